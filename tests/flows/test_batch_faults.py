"""A batch of hosted rows against a flaky provider (the fake server over loopback: 429s, 503s, connections cut
right after a submission) finishes in one pass, and each result is billed once — or the possible duplicate is
counted where the provider offers no way to find a job whose answer was lost."""

from __future__ import annotations

import pytest

from flows.batch.flow import batch
from tests.fakes.fixtures import fake  # noqa: F401  (fixture)

ROWS = 20
# Half of all API requests fail (429 or 503): 5 quick task retries, then up to 3 re-runs of a row, make a row that
# still fails rare enough (seen once in CI with 3 retries) for "one pass" to be the claim, not luck.
FAST_RETRIES = {"retries": 5, "backoff_seconds": 0.05, "backoff_max_seconds": 0.2}
INPUTS = {
    "replicate/flux-schnell": {"prompt": "${params.prompt}", "megapixels": "0.25"},
    "fal/flux-schnell": {"prompt": "${params.prompt}", "image_size": {"width": 256, "height": 256}},
}


def still_spec(generator: str) -> dict:
    return {
        "name": "flaky-stills",
        "params": {"prompt": {"type": "string", "required": True}},
        "steps": {"still": {"generator": generator, "inputs": INPUTS[generator], "task": FAST_RETRIES}},
        "outputs": {"image": "${steps.still.images}"},
    }


@pytest.mark.slow
@pytest.mark.parametrize(("generator", "provider", "findable"), [
    ("replicate/flux-schnell", "replicate", True),
    ("fal/flux-schnell", "fal", False),
])  # fmt: skip
async def test_a_flaky_provider_batch_finishes_in_one_pass_billed_once_per_result(
    prefect_api,
    data_dir,
    registry,
    fake,  # noqa: F811
    tmp_path,
    generator,
    provider,
    findable,
):
    fake.set(rate_429=0.25, rate_5xx=0.25, retry_after=0.0, drop_after_submit=3)
    rows = [{"prompt": f"a lighthouse, take {i}"} for i in range(ROWS)]
    state = await batch(
        spec=still_spec(generator), rows=rows, results_path=str(tmp_path / "flaky"), concurrency=5, return_state=True
    )
    summary = await state.result(raise_on_failure=False)
    assert state.is_completed(), summary
    assert summary["completed"] == ROWS and summary["failed"] == 0, summary
    assert fake.knobs.drop_after_submit == 0, "the three drops did not happen"
    bills = len(fake.submissions(provider))
    if findable:  # each lost answer's job was found in the provider's list: one bill per result
        assert bills == ROWS and summary["possible_duplicate_charges"] == 0
    else:  # no way to find them: billed again, and every one of those said so
        assert bills == ROWS + 3 and summary["possible_duplicate_charges"] == 3


def test_the_batch_summary_and_table_own_up_to_possible_duplicate_charges(tmp_path):
    import io
    from decimal import Decimal

    from rich.console import Console

    from cli.display import BatchDisplay
    from flows.batch import results as batch_results
    from flows.events import BatchFinished
    from flows.reporting.costs import CostRecord, summary_markdown

    record = CostRecord(
        pipeline="p", step="still", generator="fal/flux-schnell", provider="fal", status="completed",
        estimated_usd=Decimal("0.003"), actual_usd=Decimal("0.003"), actual_is_estimate=True, cached=False,
        possible_duplicates=2,
    )  # fmt: skip
    row = batch_results.from_records("p", 1, [record], {}, None, 1.0, "run-1")
    summary = batch_results.summary("p", [row], "r.csv", "r.parquet")
    assert summary["possible_duplicate_charges"] == 2
    assert "**2 possible duplicate charge(s):**" in summary_markdown("p", [record])  # the run's own cost summary
    assert "**2 possible duplicate charge(s)**" in batch_results.summary_line(summary)
    out = io.StringIO()
    display = BatchDisplay(Console(file=out, width=200))
    display(BatchFinished(summary, [row]))
    display.print_results()
    assert "2 possible duplicate charge(s):" in out.getvalue()


def test_row_retries_stop_at_three_per_row_and_at_the_batch_budget():
    from flows.batch.runner import RowRetries

    retries = RowRetries(total=4)
    assert [retries.take(tries) for tries in range(4)] == [True, True, True, False]  # one row: 3 re-runs
    assert retries.take(0) is True and retries.take(0) is False  # the batch's 4 are spent
    assert 0.5 <= retries.delay(0) <= 1.5 and retries.delay(10) <= 45
