"""Every provider's HTTP failures map to the right error class, with the provider's message and never the key."""

from __future__ import annotations

import datetime as dt
import email.utils

import httpx
import pytest

from generators.errors import (
    InsufficientCreditError,
    ProviderAuthError,
    ProviderError,
    ProviderInputError,
    RateLimitError,
    TransientProviderError,
    UnexpectedResponseError,
    is_retryable,
)
from generators.providers.elevenlabs import ElevenLabsClient
from generators.providers.fal import FalClient, FalJob
from generators.providers.http import retry_after_seconds
from generators.providers.openai import OpenAIClient
from generators.providers.replicate import ReplicateClient

CLIENTS = {"fal": FalClient, "replicate": ReplicateClient, "openai": OpenAIClient, "elevenlabs": ElevenLabsClient}
# The text each provider's own error body puts in the message for a rejected input.
INPUT_MESSAGES = {
    "fal": "prompt: field required",
    "replicate": "input.prompt",
    "openai": "Invalid value for 'size'",
    "elevenlabs": "text: Field required",
}


async def call(provider: str, client, tmp_path) -> None:
    """One cheap, billable request in each provider's API."""
    if provider == "fal":
        await client.submit("fal-ai/flux/schnell", {"prompt": "a lighthouse"})
    elif provider == "replicate":
        await client.create(model="black-forest-labs/flux-schnell", input={"prompt": "a lighthouse"})
    elif provider == "openai":
        await client.generate_images({"model": "gpt-image-2", "prompt": "a lighthouse", "size": "1024x1024"})
    else:
        await client.text_to_speech(
            "JBFqnCBsd6RMkjVDRZzb",
            {"text": "hi", "model_id": "eleven_multilingual_v2"},
            output_format="mp3_44100_128",
            dest=tmp_path / "out.mp3",
        )


@pytest.mark.parametrize("provider", CLIENTS)
async def test_wrong_key_is_an_auth_error_naming_the_env_var_and_never_the_key(fake, provider, tmp_path):
    wrong = f"{provider}-wrong-key-5e8d2c1b9a"
    async with CLIENTS[provider](wrong) as client:
        with pytest.raises(ProviderAuthError) as info:
            await call(provider, client, tmp_path)
    err = info.value
    assert err.status_code == 401 and not is_retryable(err)
    assert CLIENTS[provider].info.credential.env_var in str(err)
    # The fake echoes the presented key in its error body, as some real APIs do; it must be masked everywhere.
    assert wrong not in str(err) and wrong not in (err.body or "") and wrong not in repr(err.args)
    assert "[redacted]" in (err.body or "")
    assert fake.submissions() == []


@pytest.mark.parametrize("provider", CLIENTS)
async def test_out_of_credit_is_never_retried_whatever_status_the_provider_uses(fake, provider, tmp_path):
    fake.set(exhausted_credit=True)  # fal answers 403, Replicate 402, OpenAI 429, ElevenLabs 401
    async with CLIENTS[provider]() as client:
        with pytest.raises(InsufficientCreditError) as info:
            await call(provider, client, tmp_path)
    assert not is_retryable(info.value)
    assert CLIENTS[provider].info.billing_url in str(info.value)


@pytest.mark.parametrize("provider", CLIENTS)
async def test_rejected_input_carries_the_providers_message(fake, provider, tmp_path):
    fake.fail_next(provider, 422)
    async with CLIENTS[provider]() as client:
        with pytest.raises(ProviderInputError) as info:
            await call(provider, client, tmp_path)
    assert INPUT_MESSAGES[provider] in str(info.value)
    assert not is_retryable(info.value)


@pytest.mark.parametrize("provider", CLIENTS)
async def test_rate_limit_surfaces_retry_after(fake, provider, tmp_path):
    fake.fail_next(provider, 429, retry_after=7)
    async with CLIENTS[provider]() as client:
        with pytest.raises(RateLimitError) as info:
            await call(provider, client, tmp_path)
    assert info.value.retry_after == 7.0 and is_retryable(info.value)
    assert fake.submissions() == []  # a refused request is not billed


@pytest.mark.parametrize("provider", CLIENTS)
@pytest.mark.parametrize("status", [500, 503])
async def test_server_errors_are_transient(fake, provider, status, tmp_path):
    fake.fail_next(provider, status)
    async with CLIENTS[provider]() as client:
        with pytest.raises(TransientProviderError) as info:
            await call(provider, client, tmp_path)
    assert info.value.status_code == status and is_retryable(info.value)


@pytest.mark.parametrize("provider", CLIENTS)
async def test_a_connection_dropped_after_submission_is_transient(fake, provider, tmp_path):
    fake.set(drop_after_submit=1)
    async with CLIENTS[provider]() as client:
        with pytest.raises(TransientProviderError, match="lost its connection"):
            await call(provider, client, tmp_path)
    # The provider accepted (and bills) the request although the answer never came: the hazard the
    # journal cannot cover, because no job id reached us.
    assert len(fake.submissions(provider)) == 1


@pytest.mark.parametrize("provider", CLIENTS)
async def test_a_timeout_is_transient(fake, provider, tmp_path):
    fake.set(latency=1.0)
    async with CLIENTS[provider](timeout=httpx.Timeout(0.2)) as client:
        with pytest.raises(TransientProviderError, match="timed out"):
            await call(provider, client, tmp_path)


async def test_a_body_that_does_not_match_the_documented_shape_is_unexpected_and_carries_it():
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"id": "abc", "state": "queued"})

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        client = FalClient("fal-key-xyz123", base_url="https://queue.fal.run", http=http)
        with pytest.raises(UnexpectedResponseError) as info:
            await client.submit("fal-ai/flux/dev", {"prompt": "x"})
    assert "FalJob" in str(info.value) and '"state":"queued"' in info.value.body


async def test_the_key_goes_only_to_the_providers_own_host():
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(200, json={"status": "COMPLETED"})

    job = FalJob(
        request_id="r1",
        status_url="https://evil.example/steal",
        response_url="https://evil.example/r",
        cancel_url="https://evil.example/c",
    )
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        client = FalClient("fal-key-xyz123", base_url="https://queue.fal.run", http=http)
        with pytest.raises(UnexpectedResponseError, match="refusing to send the API key"):
            await client.status(job)
    assert seen == []


def test_retry_after_in_seconds_milliseconds_and_http_dates():
    assert retry_after_seconds(httpx.Headers({"Retry-After": "12"})) == 12.0
    assert retry_after_seconds(httpx.Headers({"retry-after-ms": "250", "Retry-After": "1"})) == 0.25
    when = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=30)
    from_date = retry_after_seconds(httpx.Headers({"Retry-After": email.utils.format_datetime(when, usegmt=True)}))
    assert from_date is not None and 27 <= from_date <= 30
    assert retry_after_seconds(httpx.Headers({"Retry-After": "soon"})) is None
    assert retry_after_seconds(httpx.Headers({})) is None


async def test_a_url_httpx_cannot_parse_is_a_provider_error_naming_where_to_look():
    def handler(request: httpx.Request) -> httpx.Response:
        raise AssertionError("nothing should be sent")

    job = FalJob(
        request_id="r1",
        status_url="https://queue.fal.run/requests/r1\x00/status",  # a provider's answer with a NUL in a URL
        response_url="https://queue.fal.run/requests/r1",
        cancel_url="https://queue.fal.run/requests/r1/cancel",
    )
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        client = FalClient("fal-key-xyz123", base_url="https://queue.fal.run", http=http)
        with pytest.raises(ProviderError, match="not a valid URL") as info:
            await client.status(job)
    assert "FAL_BASE_URL" in info.value.hint
