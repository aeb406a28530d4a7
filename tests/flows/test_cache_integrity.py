"""A cache hit is a promise about bytes: whichever record answers, a hit whose objects are gone or changed is
made again — that step and what depends on it — and the tally says why. On the local store and on S3."""

from __future__ import annotations

import boto3
import pytest

from flows.engine.caching import cache_key
from flows.events import StepDone, subscribe
from generators.storage import ArtifactStore, LocalStore
from generators.storage.s3 import S3Store
from tests.flows.kit import Echo, by_step, run_spec
from tests.flows.test_pipeline_cache import CHAIN


@pytest.fixture(params=["local", "s3"])
def run_store(request, data_dir, monkeypatch) -> tuple[ArtifactStore, dict]:
    """(the store the runs use, the keyword arguments that point a run at it): the data folder's, or S3 on moto."""
    if request.param == "local":
        return LocalStore(data_dir / "store"), {}
    endpoint, bucket = request.getfixturevalue("s3_endpoint"), request.getfixturevalue("s3_bucket")
    monkeypatch.setenv("BOARDFLOW_S3_ENDPOINT_URL", endpoint)
    return S3Store(bucket, prefix="runs", endpoint_url=endpoint), {"store_url": f"s3://{bucket}/runs"}


def flip_a_byte(store: ArtifactStore, url: str) -> None:
    """Damage the object in place, keeping its length: on disk a write into the file, on S3 a new body."""
    key = store.key_for(url)
    assert key is not None
    if isinstance(store, LocalStore):
        with store._path(key).open("r+b") as fh:
            fh.seek(len(fh.read()) // 2)
            byte = fh.read(1)
            fh.seek(-1, 1)
            fh.write(bytes([byte[0] ^ 0xFF]))
        return
    assert isinstance(store, S3Store)
    body = bytearray(store.client.get_object(Bucket=store.bucket, Key=store._full(key))["Body"].read())
    body[len(body) // 2] ^= 0xFF
    store.client.put_object(Bucket=store.bucket, Key=store._full(key), Body=bytes(body))  # as any other tool would


async def stored_sha(store: ArtifactStore, url: str) -> str:
    key = store.key_for(url)
    assert key is not None
    return await store.hash_object(key)


def statuses(records: list[dict]) -> dict[str, list[tuple[str, str | None]]]:
    return {step: [(r["status"], r["remade"]) for r in rs] for step, rs in by_step(records).items()}


async def first_output(store: ArtifactStore, echo: Echo) -> tuple[str, dict]:
    key = cache_key(echo, echo.parse_inputs({"text": "first"}).model_dump(mode="json"))
    result = await store.read_json(f"results/{key}.json")
    assert result is not None
    return key, result["outputs"]["text"]


async def test_an_object_deleted_with_its_index_record_is_made_again(prefect_api, registry, run_store):
    """Prefect's own cache record (in the local data folder) is all that is left, and it names a dead URL."""
    store, where = run_store
    echo = registry.register(Echo())
    state, result = await run_spec(CHAIN, **where)
    assert state.is_completed(), result
    key, text = await first_output(store, echo)
    await store.delete(store.key_for(text["storage_url"]))
    await store.delete(f"results/{key}.json")

    state, again = await run_spec(CHAIN, **where)
    assert state.is_completed(), again
    # Same bytes made again, so the same downstream key: only the step whose object was lost ran.
    assert statuses(again["records"]) == {
        "first": [("completed", "re-made: object missing")],
        "second": [("cached", None)],
    }
    assert [c.text for c in echo.calls] == ["first", "second", "first"]
    assert await stored_sha(store, text["storage_url"]) == text["sha256"]

    state, third = await run_spec(CHAIN, **where)  # and the next re-run is a plain hit again
    assert statuses(third["records"]) == {"first": [("cached", None)], "second": [("cached", None)]}
    assert len(echo.calls) == 3


async def test_a_store_that_lost_its_data_and_got_it_back_empty_makes_everything_again(
    prefect_api, registry, run_store
):
    store, where = run_store
    echo = registry.register(Echo())
    state, result = await run_spec(CHAIN, **where)
    assert state.is_completed(), result
    if isinstance(store, S3Store):  # the bucket is lost with everything in it, then made again, empty
        bucket = boto3.resource("s3", endpoint_url=store.endpoint_url).Bucket(store.bucket)
        bucket.objects.all().delete()
        bucket.delete()
        bucket.create()
    else:
        for key in await store.list_keys(""):
            await store.delete(key)

    state, again = await run_spec(CHAIN, **where)
    assert state.is_completed(), again
    # Locally Prefect's cache records outlive the store (they are in the data folder) and promise hits that must
    # be refused; an S3 store holds them itself, so with it they are gone and nothing promises anything.
    why = "re-made: object missing" if isinstance(store, LocalStore) else None
    assert statuses(again["records"]) == {"first": [("completed", why)], "second": [("completed", why)]}
    final = again["outputs"]["text"]
    assert await stored_sha(store, final["storage_url"]) == final["sha256"]
    assert len(echo.calls) == 4


async def test_flipped_bytes_in_the_final_output_are_made_again_not_served(prefect_api, registry, run_store):
    store, where = run_store
    echo = registry.register(Echo())
    state, result = await run_spec(CHAIN, **where)
    assert state.is_completed(), result
    final = result["outputs"]["text"]
    flip_a_byte(store, final["storage_url"])
    assert await stored_sha(store, final["storage_url"]) != final["sha256"]

    state, again = await run_spec(CHAIN, **where)
    assert state.is_completed(), again
    assert statuses(again["records"]) == {
        "first": [("cached", None)],
        "second": [("completed", "re-made: bytes changed")],
    }
    assert again["outputs"]["text"]["sha256"] == final["sha256"]
    assert await stored_sha(store, final["storage_url"]) == final["sha256"], "the damaged object is still served"
    assert [c.text for c in echo.calls] == ["first", "second", "second"]


def still_spec(text: str) -> dict:
    return {
        "name": "still-look",
        "steps": {
            "still": {"generator": "local/procedural-image", "inputs": {"prompt": "a lighthouse", "size": "512x512"}},
            "look": {"generator": "test/echo", "inputs": {"text": text, "image": "${steps.still.image}"}},
        },
        "outputs": {"text": "${steps.look.text}", "image": "${steps.still.image}"},
    }


async def test_a_damaged_intermediate_png_remakes_the_step_that_made_it(prefect_api, registry, run_store):
    store, where = run_store
    echo = registry.register(Echo())
    state, result = await run_spec(still_spec("first look"), **where)
    assert state.is_completed(), result
    png = result["outputs"]["image"]
    flip_a_byte(store, png["storage_url"])

    # A new downstream step reads the PNG: the plan finds it damaged, so the step that made it runs first.
    state, again = await run_spec(still_spec("second look"), **where)
    assert state.is_completed(), again
    assert statuses(again["records"]) == {
        "still": [("completed", "re-made: bytes changed")],
        "look": [("completed", None)],
    }
    assert again["outputs"]["image"]["sha256"] == png["sha256"]
    assert await stored_sha(store, png["storage_url"]) == png["sha256"]
    assert f"image {png['sha256'][:12]}" in again["outputs"]["text"]["content"], "look read other bytes"
    assert [c.text for c in echo.calls] == ["first look", "second look"]


async def test_an_input_damaged_while_the_run_goes_on_remakes_its_producer(prefect_api, registry, run_store):
    """The plan saw the PNG intact; it is damaged after its step was served from the cache and before the
    step that reads it starts: the reader's check finds it, the producer is made again, then the reader."""
    store, where = run_store
    echo = registry.register(Echo())
    state, result = await run_spec(still_spec("first look"), **where)
    assert state.is_completed(), result
    png = result["outputs"]["image"]

    def vandal(event: object) -> None:  # runs inside the runner, before `look` may start
        if isinstance(event, StepDone) and event.label == "still" and event.record.cached:
            flip_a_byte(store, png["storage_url"])

    with subscribe(vandal):
        state, again = await run_spec(still_spec("second look"), **where)
    assert state.is_completed(), again
    assert statuses(again["records"]) == {
        "still": [("cached", None), ("completed", "re-made: bytes changed")],
        "look": [("completed", None)],
    }
    assert f"image {png['sha256'][:12]}" in again["outputs"]["text"]["content"]
    assert [c.text for c in echo.calls] == ["first look", "second look", "second look"]  # one read the damage
    assert await stored_sha(store, png["storage_url"]) == png["sha256"]


async def test_the_progress_line_the_cost_table_and_the_summary_say_why_a_step_was_re_made(
    prefect_api, registry, data_dir, data_store
):
    import io

    from rich.console import Console

    from cli.display import RunProgress, cost_table
    from flows.reporting.costs import CostRecord, summary_markdown

    registry.register(Echo())
    state, result = await run_spec(CHAIN)
    assert state.is_completed(), result
    flip_a_byte(data_store, result["outputs"]["text"]["storage_url"])
    out = io.StringIO()
    progress = RunProgress(Console(file=out, width=200, force_terminal=False))
    with progress, subscribe(progress):
        state, again = await run_spec(CHAIN)
    assert state.is_completed(), again
    assert "second: done (re-made: bytes changed)" in out.getvalue()
    records = [CostRecord.model_validate(r) for r in again["records"]]
    table = io.StringIO()
    Console(file=table, width=200).print(cost_table(records))
    assert "completed (re-made: bytes changed)" in table.getvalue()
    assert "**1 step(s) re-made** (their cached bytes could not be served): `second` (bytes changed)" in (
        summary_markdown("chain", records)
    )
