"""`gnomon backup` copies a live SQLite database while runs are being submitted; `gnomon
restore` refuses while a server holds the database, and puts the copy back once it is
stopped (also after a kill -9, whose lock the kernel drops)."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from tests.api.helpers import create_job, trigger
from tests.server import Server
from tests.test_cli import clean_env, gnomon


def _runs(db: Path) -> set[str]:
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        return {r[0] for r in conn.execute("SELECT id FROM runs")}
    finally:
        conn.close()


def test_backup_live_then_restore(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = clean_env(GNOMON_DATA_DIR=str(data))
    srv = Server(data).start()
    try:
        with srv.client() as api:
            job = create_job(api)
            before = {trigger(api, job["id"])["id"] for _ in range(20)}
            stop = threading.Event()
            during: list[str] = []

            def submit() -> None:
                with srv.client() as c:
                    while not stop.is_set():
                        during.append(trigger(c, job["id"])["id"])

            writer = threading.Thread(target=submit)
            writer.start()
            try:
                copy = tmp_path / "copy.db"
                done = gnomon("backup", str(copy), env=env, cwd=tmp_path)
            finally:
                stop.set()
                writer.join()
            assert done.returncode == 0, done.stderr
            assert during, "no submission ran while the backup was taken"
            saved = _runs(copy)
            assert before <= saved
            later = trigger(api, job["id"])["id"]

            refused = gnomon("restore", str(copy), env=env, cwd=tmp_path)
            assert refused.returncode != 0
            assert "server is using" in refused.stderr
            assert later in _runs(data / "gnomon.db")  # untouched
    finally:
        srv.kill9()

    done = gnomon("restore", str(copy), env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert _runs(data / "gnomon.db") == saved

    srv.start()
    try:
        with srv.client() as api:
            assert api.get(f"/v1/runs/{sorted(before)[0]}").status_code == 200
            assert api.get(f"/v1/runs/{later}").status_code == 404
    finally:
        srv.stop()


def test_restore_refuses_what_is_not_a_backup(tmp_path: Path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database" * 100)
    env = clean_env(GNOMON_DATA_DIR=str(tmp_path / "data"))
    done = gnomon("restore", str(junk), env=env, cwd=tmp_path)
    assert done.returncode != 0
    assert "not a gnomon database" in done.stderr
    assert not (tmp_path / "data" / "gnomon.db").exists()


def test_backup_of_postgresql_points_to_pg_dump(tmp_path: Path) -> None:
    env = clean_env(GNOMON_DATABASE_URL="postgresql://u@127.0.0.1:1/x")
    done = gnomon("backup", str(tmp_path / "x"), env=env, cwd=tmp_path)
    assert done.returncode == 2
    assert "pg_dump" in done.stderr
