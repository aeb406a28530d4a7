"""pytest fixtures for the fake provider server: one server per test session, clean knobs and records per test.

Use from a conftest: `from tests.fakes.fixtures import fake, hosted_ctx  # noqa: F401`.
"""

from __future__ import annotations

import atexit
from urllib.parse import urlparse

import pytest

from .server import FakeProviderServer

_server: FakeProviderServer | None = None


def fake_provider_server() -> FakeProviderServer:
    """The session's server, started on first use (several conftests may ask; there is still one)."""
    global _server
    if _server is None:
        _server = FakeProviderServer().start()
        atexit.register(_server.stop)
    return _server


def provider_env(server: FakeProviderServer) -> dict[str, str]:
    """Env vars that point every real provider client at `server` with its keys, and let downloads reach it."""
    url, keys = server.url, server.knobs.keys
    return {
        "FAL_KEY": keys["fal"],
        "FAL_BASE_URL": f"{url}/fal/queue",
        "FAL_REST_URL": f"{url}/fal/rest",
        "FAL_OPENAPI_URL": f"{url}/fal/openapi/queue/openapi.json",
        "REPLICATE_API_TOKEN": keys["replicate"],
        "REPLICATE_BASE_URL": f"{url}/replicate/v1",
        "OPENAI_API_KEY": keys["openai"],
        "OPENAI_BASE_URL": f"{url}/openai/v1",
        "ELEVENLABS_API_KEY": keys["elevenlabs"],
        "ELEVENLABS_BASE_URL": f"{url}/elevenlabs",
        "KIE_API_KEY": keys["kie"],
        "KIE_BASE_URL": f"{url}/kie",
        # Outputs are downloaded from the fake on loopback: allow exactly its host:port, nothing wider.
        "BOARDFLOW_ALLOWED_HOSTS": urlparse(url).netloc,
    }


@pytest.fixture
def fake(monkeypatch) -> FakeProviderServer:
    server = fake_provider_server()
    server.reset()
    for name, value in provider_env(server).items():
        monkeypatch.setenv(name, value)
    return server


@pytest.fixture
async def hosted_ctx(store, fake):
    """A GeneratorContext on a fresh local store whose fetch policy admits the fake server."""
    from generators.context import GeneratorContext

    async with GeneratorContext(store, run_id="test-run", cache_key="test-step-key") as context:
        yield context


def hosted(name: str, **client_options):
    """The registered hosted generator `name`, polling fast (the fake's jobs take tens of milliseconds)."""
    from generators.hosted import HOSTED_GENERATORS

    (found,) = [g for g in HOSTED_GENERATORS if g.name == name]
    return found.configured(**{"poll_interval": 0.01, "max_poll_interval": 0.05, **client_options})


async def wait_until(predicate, *, timeout: float = 20.0, what: str = "condition") -> None:
    """Poll `predicate` until it is true, failing the test at the deadline (never a fixed sleep)."""
    import asyncio
    import time

    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.02)


async def run_losing_the_download(fake, store, gen, inputs: dict, cache_key: str) -> None:
    """Run `gen` once while its output download is too slow for it: the job finished and stays journaled."""
    import httpx

    from generators.context import GeneratorContext
    from generators.errors import TransientProviderError
    from generators.fetch import FetchPolicy

    fake.set(slow_download=2.0)
    impatient = FetchPolicy(allowed_hosts=FetchPolicy.from_settings().allowed_hosts, timeout=httpx.Timeout(0.3))
    async with GeneratorContext(store, cache_key=cache_key, fetch_policy=impatient) as ctx:
        with pytest.raises(TransientProviderError, match="download"):
            await gen.run(inputs, ctx)
    fake.set(slow_download=0.0)
