"""A step is bound once: the plan's calls are the ones that run; a run returns a typed PipelineRun."""

from __future__ import annotations

from decimal import Decimal

from flows.events import Event, StepDone, StepStarted, subscribe
from flows.pipeline import PipelineRun, run_pipeline
from generators.artifacts import TextArtifact
from tests.flows.kit import Echo

CHAIN = {
    "name": "bound-chain",
    "params": {"word": {"type": "string", "default": "hello"}},
    "steps": {
        "first": {"generator": "test/counted", "inputs": {"text": "${params.word}"}},
        "second": {"generator": "test/counted", "inputs": {"text": "again", "source": "${steps.first.text}"}},
        "fan": {"generator": "test/counted", "for_each": ["a", "b"], "inputs": {"text": "${item}"}},
    },
    "outputs": {"text": "${steps.second.text}", "fan": "${steps.fan.text}", "word": "${params.word}"},
}


class Counted(Echo):
    """Echo that counts how often its inputs are validated and its cost estimated."""

    def __init__(self) -> None:
        super().__init__("test/counted", estimate="0.01")
        self.parsed = 0
        self.estimated = 0

    def parse_inputs(self, raw, *, where=""):
        if not isinstance(raw, self.get_input_schema()):
            self.parsed += 1
        return super().parse_inputs(raw, where=where)

    async def estimate_cost(self, inputs):
        self.estimated += 1
        return await super().estimate_cost(inputs)


async def test_each_step_is_validated_and_estimated_once_per_run(prefect_api, data_dir, registry):
    counted = registry.register(Counted())
    seen: list[Event] = []
    with subscribe(seen.append):
        result = await run_pipeline(spec=CHAIN)
    assert len(counted.calls) == 4
    # The plan binds all four: `first` and `fan[0..1]` on known inputs (those calls are the ones that run) and
    # `second` on a stand-in for `first`'s output (an estimate only); at run time only `second` is bound again,
    # on its real input. Before binding was done once, every step was validated and estimated three times.
    assert counted.estimated == 5, counted.estimated
    assert counted.parsed == 5, counted.parsed
    started = [e.label for e in seen if isinstance(e, StepStarted)]
    assert sorted(started) == ["fan[0]", "fan[1]", "first", "second"]
    assert all(e.record.estimated_usd == Decimal("0.01") for e in seen if isinstance(e, StepDone))

    assert isinstance(result, PipelineRun)
    assert isinstance(result.outputs["text"], TextArtifact) and result.outputs["text"].content.startswith("again")
    assert [a.content for a in result.outputs["fan"]] == ["a", "b"]
    assert result.outputs["word"] == "hello"
    assert [(name, index) for name, index, _ in result.artifacts()] == [("text", None), ("fan", 0), ("fan", 1)]
    assert result.totals["actual_usd"] == Decimal("0.04")


async def test_a_cached_rerun_binds_nothing_again(prefect_api, data_dir, registry):
    counted = registry.register(Counted())
    await run_pipeline(spec=CHAIN)
    counted.parsed = counted.estimated = 0
    again = await run_pipeline(spec=CHAIN)
    assert len(counted.calls) == 4, "nothing ran a second time"
    assert all(r.cached for r in again.records)
    # The plan binds all four (their inputs are known, upstream results are in the cache); the runner reuses them.
    assert counted.estimated == 4
