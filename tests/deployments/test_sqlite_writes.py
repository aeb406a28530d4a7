"""The SQLite-backed server boardflow starts: batch rows' writes wait for each other instead of failing with 503."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from deployments.database import WaitingSqliteConfiguration, use_waiting_sqlite
from deployments.local_server import PrefectServer

BOARDFLOW = str(Path(sys.executable).with_name("boardflow"))
ONE_STEP = """\
name: sqlite-rows
params:
  line: {type: string, required: true}
steps:
  note:
    generator: local/text-template
    inputs: {template: "{line}", parameters: {line: "${params.line}"}}
"""
ROWS = 8


@pytest.mark.servers
def test_a_batch_on_boardflows_sqlite_server_gets_no_database_is_locked_503(tmp_path):
    # On Prefect's own SQLite server each row's subflow start (its parent task run's insert) came back
    # 503 "database is locked" about once a row, and the client waited 2 s before trying again.
    spec, rows = tmp_path / "sqlite-rows.yaml", tmp_path / "rows.csv"
    spec.write_text(ONE_STEP)
    rows.write_text("line\n" + "".join(f"row {i}\n" for i in range(ROWS)))
    # INFO: the server's log then has uvicorn's line for every request, with its status (and importing cli.app,
    # as other tests do, quiets Prefect's console handler for the whole process and what it starts)
    info = {"PREFECT_SERVER_LOGGING_LEVEL": "INFO", "PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL": "INFO"}
    with PrefectServer(tmp_path / "home", extra_env=info) as server:
        done = subprocess.run(
            [BOARDFLOW, "batch", str(spec), str(rows), "--concurrency", "1", "--out", str(tmp_path / "results")],
            env=server.env(BOARDFLOW_DATA_DIR=str(tmp_path / "data")), capture_output=True, text=True, timeout=300,
        )  # fmt: skip
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    assert (tmp_path / "results.csv").read_text().count(",completed,") == ROWS
    assert_no_locked_writes(tmp_path / "home" / "server.log")


def test_a_batch_with_no_server_of_the_users_runs_on_a_waiting_temporary_one(tmp_path):
    # Without PREFECT_API_URL, Prefect's own temporary server stalled the same way (2 s a row); boardflow now
    # starts its own on the same database, delivers the runs' events to it, and stops it at the end.
    spec, rows, home = tmp_path / "sqlite-rows.yaml", tmp_path / "rows.csv", tmp_path / "home"
    spec.write_text(ONE_STEP)
    rows.write_text("line\n" + "".join(f"row {i}\n" for i in range(ROWS)))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_API_URL", "PREFECT_UI_URL"))}
    env.update(PREFECT_HOME=str(home), PREFECT_SERVER_LOGGING_LEVEL="INFO", BOARDFLOW_DATA_DIR=str(tmp_path / "data"))
    done = subprocess.run(
        [BOARDFLOW, "batch", str(spec), str(rows), "--concurrency", "1", "--out", str(tmp_path / "results")],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    assert (tmp_path / "results.csv").read_text().count(",completed,") == ROWS
    assert_no_locked_writes(home / "server.log")
    with sqlite3.connect(home / "prefect.db") as db:  # the runs stay in the project's database, steps included
        assert db.execute("select count(*) from flow_run").fetchone()[0] == ROWS + 1
        steps = db.execute("select count(*) from task_run where name like 'note %'").fetchone()[0]
    assert steps == ROWS
    server = re.search(r"Started server process \[(\d+)\]", (home / "server.log").read_text())
    assert server is not None
    assert not psutil.pid_exists(int(server.group(1)))  # stopped with the command


def assert_no_locked_writes(server_log: Path) -> None:
    log = server_log.read_text(errors="replace")
    statuses = re.findall(r'"(POST|PATCH|PUT|DELETE) (/api/\S+) HTTP/1.1" (\d{3})', log)
    created = [path for method, path, code in statuses if path == "/api/task_runs/" and code == "201"]
    # every row's subflow has its parent task run: the log has what we look for
    assert len(created) >= ROWS, log[:3000]
    assert [(m, p) for m, p, code in statuses if code == "503"] == []


def test_the_waiting_configuration_is_given_to_prefect_for_sqlite_only(monkeypatch):
    from prefect.server.database.dependencies import MODELS_DEPENDENCIES, temporary_database_config
    from prefect.settings import PREFECT_API_DATABASE_CONNECTION_URL, temporary_settings

    with temporary_database_config(None):
        with temporary_settings({PREFECT_API_DATABASE_CONNECTION_URL: "postgresql+asyncpg://u:p@127.0.0.1/prefect"}):
            assert not use_waiting_sqlite()
            assert MODELS_DEPENDENCIES["database_config"] is None
        with temporary_settings({PREFECT_API_DATABASE_CONNECTION_URL: "sqlite+aiosqlite:///tmp/prefect.db"}):
            assert use_waiting_sqlite()
            assert isinstance(MODELS_DEPENDENCIES["database_config"], WaitingSqliteConfiguration)


@pytest.mark.parametrize("for_update", [False, True])
async def test_every_transaction_of_the_waiting_configuration_takes_the_write_lock_first(tmp_path, for_update):
    import sqlite3

    import sqlalchemy as sa

    path = tmp_path / "p.db"
    sqlite3.connect(path).execute("CREATE TABLE t (x)").connection.commit()
    config = WaitingSqliteConfiguration(connection_url=f"sqlite+aiosqlite:///{path}")
    engine = await config.engine()
    try:
        async with await config.session(engine) as session, config.begin_transaction(session, for_update):
            await session.execute(sa.text("SELECT x FROM t"))  # a read first, as Prefect's inserts do
            other = sqlite3.connect(path, timeout=0, isolation_level=None)
            with pytest.raises(sqlite3.OperationalError, match="database is locked"):
                other.execute("BEGIN IMMEDIATE")  # a DEFERRED read would have left the write lock free
            other.close()
    finally:
        await engine.dispose()
