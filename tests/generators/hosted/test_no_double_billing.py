"""No double billing: a retry, a crash or a re-run with the same cache key rejoins the journaled job.

The strongest proof runs the generator in a child process, SIGKILLs it while it polls a slow job, and runs
it again in a new process with the same cache key: the fake provider records exactly one submission.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from generators.context import GeneratorContext
from generators.errors import JobFailedError, TransientProviderError
from generators.media import probe
from generators.providers.fal import FalClient, FalJob
from tests.fakes.fixtures import hosted, run_losing_the_download, wait_until

CHILD = textwrap.dedent("""
    import asyncio, json, sys
    from pathlib import Path
    from generators.context import GeneratorContext
    from generators.hosted import HOSTED_GENERATORS
    from generators.storage import LocalStore

    async def main(store_dir, cache_key, name, raw_inputs):
        (gen,) = [g for g in HOSTED_GENERATORS if g.name == name]
        gen = gen.configured(poll_interval=0.05, max_poll_interval=0.05)
        async with GeneratorContext(LocalStore(Path(store_dir)), run_id="child", cache_key=cache_key) as ctx:
            result = await gen.run(json.loads(raw_inputs), ctx)
        print(result.model_dump_json())

    asyncio.run(main(*sys.argv[1:]))
""")


@pytest.mark.parametrize(
    ("name", "inputs", "status_path"),
    [
        ("fal/flux-schnell", {"prompt": "a harbour at night"}, "/status"),
        ("replicate/flux-schnell", {"prompt": "a harbour at night", "megapixels": "0.25"}, "/predictions/"),
    ],
)
async def test_killed_while_polling_then_rerun_in_a_new_process_pays_once(
    fake, store, tmp_path, name, inputs, status_path
):
    fake.set(job_seconds=120)  # the job outlives the first process
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    args = [sys.executable, str(script), str(store.root), "step-key-42", name, json.dumps(inputs)]
    first = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        await wait_until(lambda: len(fake.submissions()) == 1, what="the submission")
        # Wait for polls of that job, so the kill lands mid-wait (after the journal entry was written).
        await wait_until(lambda: fake.requests_to(status_path, "GET") >= 2, what="the child polling")
        assert (store.root / "journal" / "step-key-42.json").exists()
        os.kill(first.pid, signal.SIGKILL)
        assert first.wait(timeout=10) == -signal.SIGKILL
    finally:
        if first.poll() is None:
            first.kill()
    fake.finish_all()  # the provider finished the job while nobody was watching

    second = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert second.returncode == 0, second.stderr[-2000:]
    result = json.loads(second.stdout)
    (submission,) = fake.submissions()  # exactly one billed submission across both processes
    assert result["external_job_ids"] == [submission.job_id]
    artifact = result["outputs"]["images"][0]
    stored = store.local_path(store.key_for(artifact["storage_url"]))
    assert probe(stored, "image").width == artifact["width"]
    assert not (store.root / "journal" / "step-key-42.json").exists()


async def test_a_download_that_fails_after_the_job_finished_is_collected_on_retry_without_resubmitting(fake, store):
    gen = hosted("fal/flux-dev")
    await run_losing_the_download(fake, store, gen, {"prompt": "a barn"}, "retry-key")
    async with GeneratorContext(store, cache_key="retry-key") as ctx:
        result = await gen.run({"prompt": "a barn"}, ctx)
    assert len(fake.submissions()) == 1
    assert result.external_job_ids == [fake.submissions()[0].job_id]


async def test_a_failed_job_is_submitted_anew_on_retry(fake, store):
    fake.set(fail_jobs=True)
    gen = hosted("replicate/flux-schnell")
    async with GeneratorContext(store, cache_key="failing-key") as ctx:
        with pytest.raises(JobFailedError, match="the model crashed"):
            await gen.run({"prompt": "x"}, ctx)
    fake.set(fail_jobs=False)
    async with GeneratorContext(store, cache_key="failing-key") as ctx:
        result = await gen.run({"prompt": "x"}, ctx)
    first, second = fake.submissions()
    assert result.external_job_ids == [second.job_id] != [first.job_id]


async def test_a_cancelled_job_is_submitted_anew(fake, store):
    fake.set(job_seconds=60)
    gen = hosted("fal/flux-schnell")
    async with GeneratorContext(store, cache_key="cancel-key") as ctx:
        impatient = type(gen)(dataclasses.replace(gen.spec, max_wait_s=0.2), **gen.client_options)
        with pytest.raises(TransientProviderError, match="rejoin"):  # gave up waiting; the request stays journaled
            await impatient.run({"prompt": "x"}, ctx)
        entry = await ctx.previous_job()
    async with FalClient() as fal:
        job = FalJob(
            request_id=entry["job_id"],
            status_url=entry["status_url"],
            response_url=entry["response_url"],
            cancel_url=entry["cancel_url"],
        )
        assert await fal.cancel(job) == "CANCELLATION_REQUESTED"
    fake.set(job_seconds=0.05)
    async with GeneratorContext(store, cache_key="cancel-key") as ctx:
        result = await gen.run({"prompt": "x"}, ctx)
    assert len(fake.submissions()) == 2 and result.external_job_ids == [fake.submissions()[1].job_id]


async def test_different_steps_never_share_a_job(fake, store):
    gen = hosted("fal/flux-schnell")
    for key in ("step-a", "step-b"):
        async with GeneratorContext(store, cache_key=key) as ctx:
            await gen.run({"prompt": "same prompt"}, ctx)
    assert len(fake.submissions()) == 2
