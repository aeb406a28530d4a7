"""DNS rebinding cannot deliver a request: the name is resolved once and the checked address is dialled (finding 4)."""

from __future__ import annotations

import httpx
import pytest

from generators.errors import BoardflowError, InputError, UnsafeURLError
from generators.fetch import FetchPolicy, download
from tests.fakes.loopback import RawServer, answer
from tests.fakes.tls import make_chain

PUBLIC = "93.184.215.14"


class RebindingDNS:
    """Answers the first lookup of a name with a public address and every later one with loopback."""

    def __init__(self) -> None:
        self.lookups: list[str] = []

    async def __call__(self, host: str, port: int) -> list[str]:
        self.lookups.append(host)
        return [PUBLIC] if len(self.lookups) == 1 else ["127.0.0.1"]


class FixedDNS:
    def __init__(self, answers: dict[str, list[str]]) -> None:
        self.answers = answers
        self.lookups: list[str] = []

    async def __call__(self, host: str, port: int) -> list[str]:
        self.lookups.append(host)
        return self.answers[host]


@pytest.fixture(scope="module")
def server():
    with RawServer() as srv:
        srv.route("/internal", answer(b"internal service"))
        yield srv


async def test_a_name_that_rebinds_to_loopback_after_the_check_gets_no_request_through(server, tmp_path):
    # `localhost` is what the system resolves to 127.0.0.1: a client that resolves again on its own gets there.
    dns = RebindingDNS()
    policy = FetchPolicy(resolver=dns, timeout=httpx.Timeout(5.0))
    with pytest.raises(BoardflowError) as info:
        await download(f"http://localhost:{server.port}/internal", tmp_path / "x.bin", policy)
    assert server.requests_to("/internal") == [], "the internal service received the request"
    assert dns.lookups == ["localhost"], "the name was resolved more than once"
    assert PUBLIC in str(info.value)  # the connection went to the address that passed the check
    assert list(tmp_path.iterdir()) == []


async def test_a_pinned_connection_keeps_the_name_in_the_host_header(server, tmp_path):
    dns = FixedDNS({"media.boardflow.test": ["127.0.0.1"]})
    policy = FetchPolicy(
        allowed_hosts=frozenset({f"media.boardflow.test:{server.port}"}), resolver=dns, timeout=httpx.Timeout(5.0)
    )
    url = server.route("/named", answer(b"served by name"))
    await download(url.replace("127.0.0.1", "media.boardflow.test"), tmp_path / "n.bin", policy)
    assert (tmp_path / "n.bin").read_bytes() == b"served by name"
    assert server.requests_to("/named")[-1].headers["host"] == f"media.boardflow.test:{server.port}"
    assert dns.lookups == ["media.boardflow.test"]


async def test_every_address_of_a_name_is_checked_not_only_the_first(server, tmp_path):
    dns = FixedDNS({"mixed.boardflow.test": [PUBLIC, "10.0.0.7"]})
    with pytest.raises(UnsafeURLError, match="10.0.0.7"):
        await download("http://mixed.boardflow.test/x", tmp_path / "m.bin", FetchPolicy(resolver=dns))


async def test_tls_to_the_pinned_address_still_sends_and_verifies_the_name(tmp_path):
    client_tls, server_tls = make_chain(tmp_path, "media.boardflow.test")
    names = ["media.boardflow.test", "other.boardflow.test"]  # both resolve to the server; its certificate names one
    dns = FixedDNS({name: ["127.0.0.1"] for name in names})
    policy = FetchPolicy(allowed_hosts=frozenset(names), resolver=dns, tls=client_tls, timeout=httpx.Timeout(5.0))
    with RawServer(tls=server_tls) as srv:
        url = srv.route("/clip", answer(b"over tls")).replace("127.0.0.1", "media.boardflow.test")
        await download(url, tmp_path / "clip.bin", policy)
        assert (tmp_path / "clip.bin").read_bytes() == b"over tls"
        assert srv.sni == ["media.boardflow.test"]
        assert srv.requests_to("/clip")[-1].headers["host"] == f"media.boardflow.test:{srv.port}"
        with pytest.raises(InputError, match="certificate"):
            await download(url.replace("media.", "other."), tmp_path / "other.bin", policy)
        assert len(srv.requests_to("/clip")) == 1  # the name the certificate does not cover got no request
