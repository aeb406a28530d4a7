"""Retries only for transient faults (honouring Retry-After), none for bad input, and fallbacks to other generators."""

from __future__ import annotations

from flows.engine.tasks import DEFAULTS, retry_delay
from flows.pipeline import PipelineFailedError
from generators.errors import (
    InputError,
    JobFailedError,
    ProviderInputError,
    RateLimitError,
    TransientProviderError,
)
from tests.flows.kit import Echo, by_step, run_spec, task_runs


def one_step(generator: str, task: dict | None = None, fallbacks: list[str] | None = None) -> dict:
    step = {"generator": generator, "inputs": {"text": "a lighthouse at dawn"}, "task": task or {}}
    if fallbacks:
        step["fallbacks"] = fallbacks
    return {"name": "one-step", "steps": {"only": step}, "outputs": {"text": "${steps.only.text}"}}


async def test_a_429_is_retried_after_retry_after_then_succeeds(prefect_api, data_dir, registry):
    limited = registry.register(
        Echo(
            "test/limited",
            fail_on=lambda n: (
                RateLimitError("slow down", provider="test", status_code=429, retry_after=0.8) if n == 1 else None
            ),
        )
    )
    # A tiny backoff, so only Retry-After can explain a wait of 0.8 s.
    state, result = await run_spec(one_step("test/limited", {"backoff_seconds": 0.01}))
    assert state.is_completed(), result
    assert [r["status"] for r in result["records"]] == ["completed"]
    assert len(limited.calls) == 2
    waited = limited.calls[1].at - limited.calls[0].at
    assert 0.8 <= waited < 5.0, waited
    (run,) = await task_runs(state.state_details.flow_run_id)
    assert run.run_count == 2 and run.state.is_completed()


async def test_transient_faults_stop_after_the_configured_retries(prefect_api, data_dir, registry):
    flaky = registry.register(
        Echo("test/flaky", fail_on=lambda n: TransientProviderError("bad gateway", provider="test", status_code=502))
    )
    state, exc = await run_spec(one_step("test/flaky", {"retries": 2, "backoff_seconds": 0.01}))
    assert state.is_failed()
    assert isinstance(exc, PipelineFailedError) and "bad gateway" in str(exc)
    assert len(flaky.calls) == 3  # the first attempt and two retries


async def test_an_input_error_from_the_provider_is_not_retried(prefect_api, data_dir, registry):
    why = "the prompt names a living artist; describe the style instead"
    refused = registry.register(
        Echo("test/refuses", fail_on=lambda n: ProviderInputError(why, provider="test", status_code=422))
    )
    state, exc = await run_spec(one_step("test/refuses", {"backoff_seconds": 0.01}))
    assert state.is_failed()
    assert len(refused.calls) == 1
    assert isinstance(exc, PipelineFailedError) and why in str(exc) and "only" in exc.failures
    (run,) = await task_runs(state.state_details.flow_run_id)
    assert run.run_count == 1


async def test_invalid_inputs_fail_when_the_step_is_bound_and_name_the_field(prefect_api, data_dir, registry):
    echo = registry.register(Echo())
    spec = one_step("test/echo")
    spec["steps"]["only"]["inputs"] = {"text": ""}
    state, exc = await run_spec(spec)
    assert state.is_failed() and isinstance(exc, InputError)
    assert "only.text" in str(exc) and "at least 1 character" in str(exc)
    assert echo.calls == []
    assert await task_runs(state.state_details.flow_run_id) == [], "a bad input never reaches a task"


def test_retry_delay_backs_off_with_jitter_and_never_undercuts_retry_after():
    config = {**DEFAULTS, "backoff_seconds": 2.0, "backoff_max_seconds": 10.0}
    plain = TransientProviderError("reset", provider="test")
    for attempt, base in [(1, 2.0), (2, 4.0), (3, 8.0), (6, 10.0)]:
        delays = {retry_delay(attempt, plain, config) for _ in range(50)}
        assert all(base * 0.5 <= d <= base * 1.5 for d in delays)
        assert len(delays) > 1, "no jitter"
    limited = RateLimitError("slow down", provider="test", retry_after=30)
    assert all(retry_delay(1, limited, config) >= 30 for _ in range(20))


async def test_a_failing_generator_falls_back_and_the_record_names_who_made_it(prefect_api, data_dir, registry):
    broken = registry.register(
        Echo("test/broken", fail_on=lambda n: JobFailedError("the job crashed on the GPU", provider="test"))
    )
    backup = registry.register(Echo("test/backup"))
    state, result = await run_spec(one_step("test/broken", fallbacks=["test/backup"]))
    assert state.is_completed(), result
    assert len(broken.calls) == 1 and len(backup.calls) == 1  # not retried: a failed job is not transient
    records = by_step(result["records"])["only"]
    assert [(r["generator"], r["status"]) for r in records] == [("test/broken", "failed"), ("test/backup", "completed")]
    assert "the job crashed on the GPU" in records[0]["error"]
    assert result["outputs"]["text"]["generator"] == "test/backup"


async def test_an_input_error_does_not_fall_back(prefect_api, data_dir, registry):
    why = "the source image is 12x12 px; it needs at least 64 px a side"
    registry.register(Echo("test/strict", fail_on=lambda n: InputError(why)))
    backup = registry.register(Echo("test/backup"))
    state, exc = await run_spec(one_step("test/strict", fallbacks=["test/backup"]))
    assert state.is_failed()
    assert backup.calls == [], "another generator cannot fix a wrong input"
    assert why in str(exc)
