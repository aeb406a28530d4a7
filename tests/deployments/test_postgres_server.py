"""`boardflow server --database postgresql://…`: Prefect's server on a real PostgreSQL, checked before it starts."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import asyncpg
import httpx
import pytest

from deployments.database import check_postgres, database_url, masked
from deployments.local_server import free_port
from generators.errors import ConfigurationError

BOARDFLOW = str(Path(sys.executable).with_name("boardflow"))
ONE_STEP = """\
name: on-postgres
steps:
  note:
    generator: local/text-template
    inputs: {template: "recorded in PostgreSQL"}
"""


def fetch(url: str, query: str, *args):
    async def go():
        conn = await asyncpg.connect(url)
        try:
            return await conn.fetch(query, *args)
        finally:
            await conn.close()

    return asyncio.run(go())


def execute(url: str, *statements: str) -> None:
    for statement in statements:
        fetch(url, statement)


def in_database(url: str, name: str) -> str:
    return url.rsplit("/", 1)[0] + "/" + name


def test_the_server_runs_on_postgresql_and_runs_are_recorded_there(postgres_server, tmp_path):
    port = free_port()
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "home")}
    env.pop("PREFECT_API_URL", None)
    server = subprocess.Popen(
        [BOARDFLOW, "server", "--port", str(port), "--database", postgres_server, "--home", str(tmp_path / "home")],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    api = f"http://127.0.0.1:{port}/api"
    try:
        deadline = time.monotonic() + 180
        while True:
            assert server.poll() is None, server.communicate()[0]
            try:
                if httpx.get(f"{api}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the server did not come up"
            time.sleep(0.5)
        spec = tmp_path / "on-postgres.yaml"
        spec.write_text(ONE_STEP)
        run = subprocess.run(
            [BOARDFLOW, "run", str(spec), "--json"],
            env={**env, "PREFECT_API_URL": api, "BOARDFLOW_DATA_DIR": str(tmp_path / "data")},
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert run.returncode == 0, run.stderr
        run_id = json.loads(run.stdout)["flow_run_id"]
        rows = fetch(postgres_server, "SELECT state_type FROM flow_run WHERE id = $1::uuid", run_id)
        assert [r["state_type"] for r in rows] == ["COMPLETED"]
        assert fetch(postgres_server, "SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'")
    finally:
        os.killpg(server.pid, signal.SIGTERM)  # the server and its `prefect server start` child
        out, _ = server.communicate(timeout=60)
    assert "Database: PostgreSQL 15" in out and "pg-test-secret" not in out, out


@pytest.mark.parametrize("problem", ["no server", "wrong password", "no database"])
def test_a_database_that_is_down_or_refuses_is_named_before_the_server_starts(postgres_server, tmp_path, problem):
    port = postgres_server.rsplit(":", 1)[1].split("/")[0]
    url = {
        "no server": f"postgresql://boardflow:pg-test-secret@127.0.0.1:{free_port()}/prefect",
        "wrong password": postgres_server.replace("pg-test-secret", "not-the-password"),
        "no database": in_database(postgres_server, "missing"),
    }[problem]
    started = time.monotonic()
    got = subprocess.run(
        [BOARDFLOW, "server", "--port", str(free_port()), "--database", url, "--home", str(tmp_path / "home")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    out = " ".join((got.stdout + got.stderr).split())  # unwrapped
    assert got.returncode == 1 and "Traceback" not in out, out
    assert "error:" in out and "what to do:" in out
    assert ("No PostgreSQL server answers" if problem == "no server" else "refused the connection") in out
    assert "boardflow:***@127.0.0.1" in out and "not-the-password" not in out
    assert time.monotonic() - started < 30
    assert port  # the real server was up all along


def test_pg_trgm_is_enabled_by_a_user_allowed_to_and_explained_to_one_who_is_not(postgres_server):
    execute(postgres_server, "CREATE DATABASE fresh", "CREATE DATABASE locked")
    fresh = in_database(postgres_server, "fresh")
    check_postgres(database_url(fresh) or "")
    assert fetch(fresh, "SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'")

    execute(
        postgres_server,
        "CREATE ROLE plain LOGIN PASSWORD 'plain-pw'",
        "REVOKE CREATE ON DATABASE locked FROM PUBLIC",
    )
    as_plain = in_database(postgres_server, "locked").replace("boardflow:pg-test-secret", "plain:plain-pw")
    with pytest.raises(ConfigurationError) as caught:
        check_postgres(database_url(as_plain) or "")
    assert "pg_trgm" in str(caught.value) and "CREATE EXTENSION pg_trgm" in (caught.value.hint or "")
    assert "plain-pw" not in str(caught.value)


def test_database_urls_are_normalised_for_prefect_and_others_refused(monkeypatch):
    monkeypatch.delenv("PREFECT_API_DATABASE_CONNECTION_URL", raising=False)
    assert database_url(None) is None
    assert database_url("postgresql://u:p@h/db") == "postgresql+asyncpg://u:p@h/db"
    assert database_url("postgres://u@h/db") == "postgresql+asyncpg://u@h/db"
    assert database_url("sqlite+aiosqlite:///x.db") is None
    monkeypatch.setenv("PREFECT_API_DATABASE_CONNECTION_URL", "postgresql+asyncpg://u:p@h/db")
    assert database_url(None) == "postgresql+asyncpg://u:p@h/db"
    with pytest.raises(ConfigurationError, match=r"mysql://u:\*\*\*@h/db is not a PostgreSQL URL"):
        database_url("mysql://u:secret@h/db")
    assert masked("postgresql://u:secret@h:5432/db") == "postgresql://u:***@h:5432/db"
