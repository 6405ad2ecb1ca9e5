"""A full disk under a SQLite data dir: submissions answer 503 naming the cause, /readyz says
not ready, nothing acknowledged is lost, and it all recovers once space is back."""

from __future__ import annotations

import os
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api.helpers import create_job, noop
from tests.server import Server

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    where = tmp_path / "disk"
    where.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(where)], check=True)
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def fill(where: Path) -> Path:
    """Write a file until the disk is full; the file is returned so it can be removed."""
    filler = where / "filler"
    with open(filler, "wb") as fh:
        try:
            while True:
                fh.write(b"\0" * 65536)
                fh.flush()
        except OSError:
            pass
    return filler


def test_full_disk_is_named_and_recovered(small_disk: Path) -> None:
    data = small_disk / "data"
    srv = Server(data, GNOMON_LOG_LEVEL="critical")
    srv.log_path = small_disk.parent / "server.log"  # the log must not need the full disk
    srv.start()
    try:
        with srv.client() as api:
            job = create_job(api, noop(), executor="site:nowhere")
            url = f"/v1/jobs/{job['id']}/runs"
            body = {"params": {"pad": "x" * 4000}}
            acknowledged = [api.post(url, json=body).json()["id"] for _ in range(5)]
            filler = fill(small_disk)
            refused = None
            for _ in range(2000):
                r = api.post(url, json=body)
                if r.status_code == 201:
                    acknowledged.append(r.json()["id"])
                    continue
                refused = r
                break
            assert refused is not None, "the disk never filled"
            assert refused.status_code == 503, refused.text
            err = refused.json()["error"]
            assert err["code"] == "storage_fault" and "full" in err["message"], err
            ready = api.get("/readyz")
            assert ready.status_code == 503 and "full" in ready.json()["reason"], ready.text
            assert api.get("/healthz").status_code == 200

            filler.unlink()
            assert api.get("/readyz").status_code == 200
            r = api.post(url, json=body)
            assert r.status_code == 201, r.text
            acknowledged.append(r.json()["id"])
    finally:
        srv.stop()
    with sqlite3.connect(data / "gnomon.db") as db:
        kept = {row[0] for row in db.execute("SELECT id FROM runs")}
    assert set(acknowledged) <= kept
