"""Test-session isolation: data, Prefect home and results in a temp folder; no network but loopback."""

from __future__ import annotations

import ipaddress
import os
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

# Before anything imports prefect: every path Prefect or boardflow writes goes to one session folder.
_SESSION_DIR = Path(tempfile.mkdtemp(prefix="boardflow-tests-"))
os.environ.update(
    BOARDFLOW_DATA_DIR=str(_SESSION_DIR / "data"),
    PREFECT_HOME=str(_SESSION_DIR / "prefect-home"),
    PREFECT_RESULTS_LOCAL_STORAGE_PATH=str(_SESSION_DIR / "prefect-results"),
    PREFECT_SERVER_ANALYTICS_ENABLED="false",
    DO_NOT_TRACK="1",
    PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="180",
    PREFECT_LOGGING_LEVEL="WARNING",
    AWS_ACCESS_KEY_ID="testing",
    AWS_SECRET_ACCESS_KEY="testing",
    AWS_DEFAULT_REGION="us-east-1",
)
for var in (
    "PREFECT_API_URL",
    "PREFECT_API_KEY",
    "BOARDFLOW_STORE",
    "BOARDFLOW_CONFIG",
    "BOARDFLOW_ALLOWED_HOSTS",
    "FAL_KEY",
    "REPLICATE_API_TOKEN",
    "OPENAI_API_KEY",
    "ELEVENLABS_API_KEY",
    "KIE_API_KEY",
    "KIE_CALLBACK_URL",
    "AWS_PROFILE",
):
    os.environ.pop(var, None)

_real_connect = socket.socket.connect


def _loopback_only_connect(self, address):
    """Tests never leave the machine: refuse any INET connection that is not to loopback."""
    if self.family in (socket.AF_INET, socket.AF_INET6) and isinstance(address, tuple):
        host = address[0]
        try:
            ok = ipaddress.ip_address(host.split("%")[0]).is_loopback
        except ValueError:
            ok = host == "localhost"
        if not ok:
            raise ConnectionRefusedError(f"tests may only connect to loopback, not {host}")
    return _real_connect(self, address)


socket.socket.connect = _loopback_only_connect


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh BOARDFLOW_DATA_DIR: its own artifact store, result index, Prefect cache records and locks."""
    path = tmp_path / "data"
    monkeypatch.setenv("BOARDFLOW_DATA_DIR", str(path))
    return path


@pytest.fixture
def data_store(data_dir: Path):
    """The artifact store a pipeline run in `data_dir` uses by default."""
    from generators.storage import LocalStore

    return LocalStore(data_dir / "store")


@pytest.fixture
def registry() -> Iterator:
    """A fresh registry of the built-in generators, in use for the test (`use_registry`); tests add their own."""
    from generators.registry import Registry, use_registry

    fresh = Registry().register_builtins()
    with use_registry(fresh):
        yield fresh


@pytest.fixture
def store(tmp_path):
    from generators.storage import LocalStore

    return LocalStore(tmp_path / "store")


@pytest.fixture
async def ctx(store):
    from generators.context import GeneratorContext

    async with GeneratorContext(store, run_id="test-run") as context:
        yield context


@pytest.fixture(scope="session")
def prefect_api() -> str:
    """One Prefect test harness for the whole session (its start takes ~17 s); yields its API URL.

    One harness, not one per package: Prefect keeps a single process-wide events worker for "a running
    server" whose client binds to the API URL of the moment it starts, so a second harness would send its
    task-run events (which is how task runs reach the server) to the first, stopped one. Draining the
    workers first makes sure none is bound to a server from before this harness.
    """
    from prefect.events.worker import EventsWorker
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    EventsWorker.drain_all()
    # None: wait as long as PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS says, which suits a busy CI box.
    with prefect_test_harness(server_startup_timeout=None):
        yield PREFECT_API_URL.value()


@pytest.fixture(scope="session")
def s3_endpoint():
    """A real S3 API over HTTP on 127.0.0.1 (moto's server mode), for real boto3 calls."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3_bucket(s3_endpoint, request):
    """A fresh bucket on the local S3 endpoint; returns its name."""
    import boto3

    name = f"bf-{request.node.name.lower().replace('_', '-')[:40].strip('-')}-{os.getpid()}"
    name = "".join(c for c in name if c.isalnum() or c == "-")[:60]
    boto3.client("s3", endpoint_url=s3_endpoint).create_bucket(Bucket=name)
    return name


@pytest.fixture(scope="session")
def redis_server() -> Iterator[str]:
    """A real Redis 7 on 127.0.0.1 (Debian's redis-server, which `make test` installs); yields its URL."""
    from deployments.local_redis import LocalRedis, redis_executable

    if redis_executable() is None:
        pytest.skip("redis-server is not installed (`make test` installs it with apt-get when run as root)")
    with LocalRedis() as server:
        yield server.url


@pytest.fixture
def redis_url(redis_server: str) -> str:
    """The test Redis, emptied."""
    import redis

    redis.Redis.from_url(redis_server).flushdb()
    return redis_server


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A real PostgreSQL (Debian's, which `make test` installs) on 127.0.0.1 with password auth over TCP; yields
    the URL of its `prefect` database."""
    from deployments.local_postgres import LocalPostgres, postgres_bindir

    if postgres_bindir() is None:
        pytest.skip("PostgreSQL is not installed (`make test` installs it with apt-get when run as root)")
    with LocalPostgres() as pg:
        yield pg.url


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tiers: `servers` (a real `prefect server start`, workers), `browser` (Chromium); `make test-fast` skips them."""
    for item in items:
        if {"prefect_server", "redis_server", "postgres_server"} & set(item.fixturenames):
            item.add_marker(pytest.mark.servers)
        if "chromium_executable" in item.fixturenames:
            item.add_marker(pytest.mark.browser)
