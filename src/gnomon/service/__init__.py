"""The use cases: the one place where gnomon's rules live."""

from __future__ import annotations

from gnomon.config import Settings
from gnomon.service.access import Access
from gnomon.service.apps import Apps
from gnomon.service.compute import Compute
from gnomon.service.events import Events
from gnomon.service.execution import Execution
from gnomon.service.jobs import Jobs
from gnomon.service.metrics import Metrics
from gnomon.service.plans import Plans
from gnomon.service.reservations import Reservations
from gnomon.service.runs import Runs
from gnomon.service.schedules import Schedules
from gnomon.service.signals import Signals
from gnomon.service.site_users import SiteUsers
from gnomon.service.sites import Sites
from gnomon.service.stats import Stats
from gnomon.service.templates import Templates
from gnomon.store.db import Database, private_dir


class Service:
    """Builds each use case with what it needs (the composition root): the database, the
    signals, the settings, and the one or two peers it calls."""

    def __init__(self, settings: Settings, db: Database):
        self.settings = settings
        self.db = db
        self.signals = signals = Signals()
        self.metrics = Metrics()
        self.compute = Compute(settings.compute_workers, settings.compute_queue)
        self.execution = Execution(db, settings, signals)
        self.access = Access(db, settings)
        self.apps = Apps(db)
        self.jobs = Jobs(db, settings, signals, self.apps, self.execution)
        self.site_users = SiteUsers(db, settings)
        self.reservations = Reservations(db, settings, self.site_users)
        self.runs = Runs(db, settings, signals, self.execution, self.jobs, self.reservations)
        self.schedules = Schedules(
            db,
            settings,
            signals,
            self.compute,
            self.metrics,
            self.access,
            self.jobs,
            self.execution,
        )
        self.events = Events(db, settings, signals)
        self.plans = Plans(db, settings, self.compute, self.jobs, self.runs)
        self.sites = Sites(
            db,
            settings,
            signals,
            self.site_users,
            self.events,
            self.jobs,
            self.runs,
            self.execution,
            self.reservations,
        )
        self.stats = Stats(db, settings)
        self.templates = Templates(db, settings, signals, self.jobs, self.runs)

    @classmethod
    async def open(cls, settings: Settings, *, migrate: bool = True) -> Service:
        private_dir(settings.data_dir)  # the database, admin.token and keys live there
        db = Database(
            settings.resolved_database_url, sqlite_synchronous=settings.sqlite_synchronous
        )
        db.hold()  # a restore refuses to overwrite the data of a server holding it
        if migrate:
            await db.upgrade()
        await db.connect()
        return cls(settings, db)

    def start(self) -> None:
        """Start the group commits (submissions wait for them once started)."""
        for commits in (self.runs.commits, self.schedules.commits):
            commits.start()

    async def close(self) -> None:
        for commits in (self.runs.commits, self.schedules.commits):
            await commits.stop()
        await self.events.close()
        self.compute.close()
        await self.db.close()


__all__ = ["Service"]
