"""The Prefect server's database: SQLite in PREFECT_HOME (Prefect's default) or PostgreSQL, checked before the start.

Prefect reads the database from PREFECT_API_DATABASE_CONNECTION_URL. Given a PostgreSQL URL (by
`boardflow server --database` or that variable), boardflow connects first and checks what Prefect
needs, so a wrong password, a database that does not exist or a missing extension is one clear
error instead of a server that dies in its migrations with a page of traceback.

Prefect "uses the pg_trgm extension, so it must be installed and enabled"
(https://docs.prefect.io/v3/manage/server, read 2026-12-03). pg_trgm is a trusted extension since
PostgreSQL 13: the owner of a database, or a role with CREATE on it, can enable it without superuser rights.

On SQLite, Prefect 3.9.1 starts its write transactions DEFERRED: a request reads first (a task run's labels,
a flow run's state) and only then writes. When another connection commits in between (the server's own
event and task-run recorders do, all the time), SQLite refuses the upgrade at once with "database is
locked" (SQLITE_BUSY_SNAPSHOT, for which it never calls its busy handler, so Prefect's 60 s busy_timeout
does not help); the server answers 503 and Prefect's client waits 2 s before it tries again. On a batch
that was one 503 per row, ~2 s of a one-step row's ~2 s. `python -m deployments.database server start …`
is `prefect server start` with Prefect's own SQLite configuration told to begin every transaction
IMMEDIATE (through `set_database_config`, Prefect's injection point): a writer then takes the lock first
and the next one waits in the busy handler for a few milliseconds instead of failing.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager
from urllib.parse import urlsplit, urlunsplit

from prefect.server.database.configurations import AioSqliteConfiguration
from sqlalchemy.ext.asyncio import AsyncSession, AsyncSessionTransaction

from generators.errors import ConfigurationError

ENV = "PREFECT_API_DATABASE_CONNECTION_URL"
CONNECT_SECONDS = 10.0


def database_url(given: str | None) -> str | None:
    """The PostgreSQL URL to give Prefect (`postgresql+asyncpg://…`), from `given` or the environment; None for
    Prefect's own SQLite."""
    url = (given or os.environ.get(ENV, "")).strip()
    if not url or url.startswith("sqlite"):
        return None
    scheme, rest = url.split("://", 1) if "://" in url else ("", url)
    if scheme not in ("postgres", "postgresql", "postgresql+asyncpg"):
        raise ConfigurationError(
            f"{masked(url)} is not a PostgreSQL URL (from {'--database' if given else ENV}).",
            hint="Use postgresql://USER:PASSWORD@HOST:5432/DATABASE, or leave it out for SQLite in PREFECT_HOME.",
        )
    return f"postgresql+asyncpg://{rest}"


def masked(url: str) -> str:
    """`url` with its password replaced by ***, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def check_postgres(url: str) -> str:
    """Connect to `url` and make sure pg_trgm is enabled (enabling it when allowed); return the server version."""
    return asyncio.run(_check(url))


async def _check(url: str) -> str:
    import asyncpg

    dsn = url.replace("postgresql+asyncpg://", "postgresql://", 1)
    shown = masked(dsn)
    try:
        conn = await asyncpg.connect(dsn=dsn, timeout=CONNECT_SECONDS)
    except (TimeoutError, OSError) as exc:
        raise ConfigurationError(
            f"No PostgreSQL server answers at {shown}: {type(exc).__name__}: {exc}",
            hint="Start PostgreSQL there, or fix the host and port of --database / " + ENV + ".",
        ) from None
    except asyncpg.PostgresError as exc:
        raise ConfigurationError(
            f"PostgreSQL at {shown} refused the connection: {exc}",
            hint="Check the user, password and database name; create the database first "
            "(e.g. `createdb -O USER prefect`).",
        ) from None
    try:
        version = await conn.fetchval("SHOW server_version")
        if not await conn.fetchval("SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'"):
            if not await conn.fetchval("SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm'"):
                raise ConfigurationError(
                    f"PostgreSQL at {shown} does not have the pg_trgm extension, which Prefect needs.",
                    hint="Install PostgreSQL's contrib extensions on the database server (Debian: postgresql-contrib).",
                )
            try:
                await conn.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
            except asyncpg.PostgresError as exc:
                raise ConfigurationError(
                    f"Prefect needs the pg_trgm extension in {shown}, and this user cannot enable it: {exc}",
                    hint="Have the database owner or a superuser run `CREATE EXTENSION pg_trgm;` in that database.",
                ) from None
        return str(version)
    finally:
        await conn.close()


class WaitingSqliteConfiguration(AioSqliteConfiguration):
    """Prefect's SQLite configuration, every transaction begun IMMEDIATE: writers queue in SQLite's busy
    handler instead of failing with "database is locked". Reads outside transactions are unchanged (WAL)."""

    @asynccontextmanager
    async def begin_transaction(
        self, session: AsyncSession, with_for_update: bool = False
    ) -> AsyncGenerator[AsyncSessionTransaction, None]:
        async with super().begin_transaction(session, with_for_update=True) as transaction:
            yield transaction


def use_waiting_sqlite() -> bool:
    """In a Prefect server's process: give Prefect the waiting configuration when its database is SQLite."""
    from prefect.server.database.dependencies import set_database_config
    from prefect.settings import PREFECT_API_DATABASE_CONNECTION_URL

    url = PREFECT_API_DATABASE_CONNECTION_URL.value() or ""
    if not url.startswith("sqlite"):
        return False
    set_database_config(WaitingSqliteConfiguration(connection_url=url))
    return True


def prefect_cli() -> None:
    """`prefect …` in this process, its SQLite writes waiting for each other (`python -m deployments.database`)."""
    from prefect.cli import app

    use_waiting_sqlite()
    sys.argv[0] = "prefect"
    app()


if __name__ == "__main__":
    prefect_cli()
