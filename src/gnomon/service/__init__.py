"""The use cases: the one place where gnomon's rules live."""

from __future__ import annotations

from collections.abc import Callable

from gnomon.config import Settings
from gnomon.service.access import Access
from gnomon.service.apps import Apps
from gnomon.service.compute import Compute
from gnomon.service.events import Events
from gnomon.service.history import History
from gnomon.service.jobs import Jobs
from gnomon.service.metrics import Metrics
from gnomon.service.plans import Plans
from gnomon.service.reservations import Reservations
from gnomon.service.runs import Runs
from gnomon.service.schedules import Schedules
from gnomon.service.signals import Signals
from gnomon.service.sites import Sites
from gnomon.service.stats import Stats
from gnomon.service.templates import Templates
from gnomon.store.db import Database, private_dir


class Service:
    def __init__(self, settings: Settings, db: Database):
        self.settings = settings
        self.db = db
        self.signals = Signals()
        self.metrics = Metrics()
        self.compute = Compute(settings.compute_workers, settings.compute_queue)
        self.cancel_hooks: list[Callable[[str], None]] = []  # executors holding runs locally
        self.access = Access(self)
        self.jobs = Jobs(self)
        self.runs = Runs(self)
        self.schedules = Schedules(self)
        self.events = Events(self)
        self.apps = Apps(self)
        self.history = History(self)
        self.plans = Plans(self)
        self.sites = Sites(self)
        self.reservations = Reservations(db, settings, self.sites)
        self.stats = Stats(self)
        self.templates = Templates(self)

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
