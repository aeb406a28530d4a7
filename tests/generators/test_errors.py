"""Every error says what to do next, and only faults a retry can cure are retryable."""

from __future__ import annotations

import asyncio
import socket
from decimal import Decimal

import httpx
import pytest

from generators import errors
from generators.errors import (
    ArtifactDecodeError,
    BoardflowError,
    BudgetExceededError,
    ConfigurationError,
    DamagedArtifactError,
    GeneratorNotFoundError,
    InputError,
    InputValidationError,
    InsufficientCreditError,
    JobFailedError,
    MediaProcessingError,
    MissingCredentialError,
    ProviderAuthError,
    ProviderError,
    ProviderInputError,
    RateLimitError,
    StorageError,
    TransientProviderError,
    UnexpectedResponseError,
    UnsafeURLError,
    is_retryable,
)

# Each class raised the plainest way (no hint given), and words its message or hint must contain.
PLAIN: dict[type[BoardflowError], tuple[BoardflowError, list[str]]] = {
    ConfigurationError: (ConfigurationError("No store configured."), ["BOARDFLOW_"]),
    MissingCredentialError: (
        MissingCredentialError(
            "FAL_KEY", provider="fal.ai", signup_url="https://fal.ai/dashboard/keys", block_type="fal-credentials"
        ),
        ["FAL_KEY", "https://fal.ai/dashboard/keys", "fal-credentials", "FAL_KEY_BLOCK"],
    ),
    GeneratorNotFoundError: (GeneratorNotFoundError("fal/flux-dvv", ["fal/flux-dev"]), ["Did you mean: fal/flux-dev"]),
    InputError: (InputError("The prompt is empty."), ["Fix the input"]),
    InputValidationError: (
        InputValidationError("fal/flux-dev", [("steps", "too big"), ("", "prompt and image conflict")]),
        ["  - steps: too big", "  - (inputs): prompt and image conflict", "boardflow generators show fal/flux-dev"],
    ),
    UnsafeURLError: (UnsafeURLError("Refusing 'ftp://x'."), ["http(s)", "artifact store"]),
    ArtifactDecodeError: (ArtifactDecodeError("clip.mp4 does not decode."), ["real type"]),
    ProviderError: (ProviderError("odd answer", provider="fal.ai", status_code=418), ["fal.ai (HTTP 418)", "status"]),
    ProviderAuthError: (ProviderAuthError("bad key", provider="fal.ai", status_code=401), ["API key"]),
    InsufficientCreditError: (InsufficientCreditError("no credit", provider="fal.ai", status_code=402), ["credits"]),
    ProviderInputError: (ProviderInputError("bad size", provider="fal.ai", status_code=422), ["generators show"]),
    RateLimitError: (RateLimitError("slow down", provider="fal.ai", status_code=429, retry_after=7), ["after 7 s"]),
    TransientProviderError: (TransientProviderError("502", provider="fal.ai", status_code=502), ["retries"]),
    JobFailedError: (JobFailedError("NSFW filter", provider="fal.ai"), ["seed"]),
    UnexpectedResponseError: (
        UnexpectedResponseError("no 'images' field", provider="fal.ai", body='{"imgs": []}' + "x" * 2000),
        ['{"imgs": []}', "report"],
    ),
    MediaProcessingError: (
        MediaProcessingError(
            "mix failed (exit code 1).",
            command=["ffmpeg", "-i", "my clip.mp4"],
            stderr_tail="my clip.mp4: No such file",
        ),
        ["ffmpeg -i 'my clip.mp4'", "ffmpeg said:\nmy clip.mp4: No such file", "ffmpeg -i FILE"],
    ),
    StorageError: (StorageError("Cannot write objects/ab/…"), ["BOARDFLOW_STORE"]),
    DamagedArtifactError: (
        DamagedArtifactError("objects/ab/… holds other bytes.", sha256="ab" * 32, problem="bytes changed"),
        ["re-makes the step that produced it", "--refresh"],
    ),
    BudgetExceededError: (
        BudgetExceededError("Plan costs $3.20.", planned_usd=Decimal("3.20"), cap_usd=Decimal("2.00")),
        ["max_cost_usd above 3.20"],
    ),
}


def _all_subclasses(cls: type) -> set[type]:
    found = set()
    for sub in cls.__subclasses__():
        if sub.__module__ == errors.__name__:
            found |= {sub} | _all_subclasses(sub)
    return found


def test_the_table_covers_every_error_class_and_the_docstring_draws_them_all():
    assert set(PLAIN) == _all_subclasses(BoardflowError)
    for cls in PLAIN:
        assert cls.__name__ in errors.__doc__


@pytest.mark.parametrize("cls", list(PLAIN), ids=lambda c: c.__name__)
def test_every_error_says_what_to_do(cls):
    exc, words = PLAIN[cls]
    assert isinstance(exc, cls)
    assert exc.hint and len(exc.hint) > 20, f"{cls.__name__} gives no next step"
    text = str(exc)
    assert exc.message in text and exc.hint in text
    for word in words:
        assert word in text, f"{word!r} not in {text!r}"


def test_an_explicit_hint_replaces_the_default():
    assert str(StorageError("Disk full.", hint="Free some space.")) == "Disk full. Free some space."
    assert RateLimitError("x", provider="p", hint="Wait.").hint == "Wait."


def test_provider_errors_carry_their_status_and_body():
    exc = ProviderInputError("bad size", provider="fal.ai", status_code=422, body='{"detail": "size"}')
    assert (exc.status_code, exc.body, exc.provider) == (422, '{"detail": "size"}', "fal.ai")
    assert RateLimitError("x", provider="p").retry_after is None
    assert len(str(PLAIN[UnexpectedResponseError][0])) < 800  # a huge body is cut, not dumped


def test_input_validation_error_from_pydantic_keeps_every_field():
    from pydantic import BaseModel, Field, ValidationError

    class Inputs(BaseModel):
        steps: int = Field(ge=1)
        size: str = Field(pattern="^[0-9]+x[0-9]+$")

    with pytest.raises(ValidationError) as info:
        Inputs(steps=0, size="big")
    exc = InputValidationError.from_pydantic("x/y", info.value, where="step 'hero'")
    assert [field for field, _ in exc.problems] == ["steps", "size"]
    assert str(exc).startswith("step 'hero': invalid inputs for x/y:")


# -- retryable or not -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("exc", "retry"),
    [
        (PLAIN[RateLimitError][0], True),
        (PLAIN[TransientProviderError][0], True),
        (httpx.ConnectTimeout("connect timed out"), True),
        (httpx.ReadTimeout("read timed out"), True),
        (httpx.WriteTimeout("write timed out"), True),
        (httpx.PoolTimeout("no free connection"), True),
        (httpx.ConnectError("refused"), True),
        (httpx.ReadError("reset by peer"), True),
        (httpx.RemoteProtocolError("server disconnected"), True),
        (PLAIN[ProviderAuthError][0], False),
        (PLAIN[InsufficientCreditError][0], False),
        (PLAIN[ProviderInputError][0], False),
        (PLAIN[InputValidationError][0], False),
        (PLAIN[UnsafeURLError][0], False),
        (PLAIN[ArtifactDecodeError][0], False),
        (PLAIN[MissingCredentialError][0], False),
        (PLAIN[BudgetExceededError][0], False),
        (PLAIN[JobFailedError][0], False),
        (PLAIN[UnexpectedResponseError][0], False),
        (httpx.UnsupportedProtocol("ftp"), False),
        (ValueError("a bug"), False),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, BaseException) else str(v),
)
def test_is_retryable(exc, retry):
    assert is_retryable(exc) is retry


async def test_real_network_faults_from_httpx_are_retryable():
    """Faults made for real on 127.0.0.1: a closed port, a server that never answers, one that hangs up."""

    async def silent(reader, writer):
        await reader.read()  # read until the client gives up; never answer
        writer.close()

    async def hang_up(reader, writer):
        writer.close()

    servers = [await asyncio.start_server(h, "127.0.0.1", 0) for h in (silent, hang_up)]
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    silent_port, hang_up_port = (s.sockets[0].getsockname()[1] for s in servers)
    caught: list[BaseException] = []
    try:
        async with httpx.AsyncClient(timeout=httpx.Timeout(0.3)) as client:
            for port in (closed_port, silent_port, hang_up_port):
                with pytest.raises(httpx.TransportError) as info:
                    await client.get(f"http://127.0.0.1:{port}/")
                caught.append(info.value)
    finally:
        for server in servers:
            server.close()
    assert [type(e) for e in caught] == [httpx.ConnectError, httpx.ReadTimeout, httpx.RemoteProtocolError]
    assert all(is_retryable(e) for e in caught)


def test_a_damaged_artifact_error_keeps_what_and_why_through_pickling():
    import pickle

    exc = DamagedArtifactError("gone.", sha256="cd" * 32, problem="object missing")
    back = pickle.loads(pickle.dumps(exc))
    assert (back.sha256, back.problem, str(back)) == (exc.sha256, exc.problem, str(exc))
