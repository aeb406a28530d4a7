"""A long step's progress card on its task run says whose progress it is, where it stands, and that it finished."""

from __future__ import annotations

from generators.context import GeneratorContext
from tests.flows.kit import Echo, EchoInput, EchoOutput, run_spec


class Halfway(Echo):
    """An Echo that reports progress as a generator does (ctx.publish_progress)."""

    async def generate(self, inputs: EchoInput, context: GeneratorContext) -> EchoOutput:
        context.publish_progress(0.5, "halfway there")
        return await super().generate(inputs, context)


async def progress_cards(text: str) -> list:
    """The progress artifacts of a one-step run of test/halfway."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, ArtifactFilterType

    state, result = await run_spec(
        {"name": "progress", "steps": {"say": {"generator": "test/halfway", "inputs": {"text": text}}}}
    )
    assert state.is_completed(), result
    async with get_client() as client:
        return await client.read_artifacts(
            artifact_filter=ArtifactFilter(
                flow_run_id=ArtifactFilterFlowRunId(any_=[state.state_details.flow_run_id]),
                type=ArtifactFilterType(any_=["progress"]),
            )
        )


async def test_a_long_steps_progress_card_names_its_step_and_generator(prefect_api, data_dir, registry, monkeypatch):
    from flows.engine.tasks import _TaskProgress

    registry.register(Halfway("test/halfway"))
    assert await progress_cards("short") == [], "a step shorter than 10 s got a progress card"
    # Every step counts as long now (the card is made only once a step has run 10 s, to spare short ones).
    monkeypatch.setattr(_TaskProgress, "LONG_STEP_SECONDS", 0.0)
    found = await progress_cards("long")
    assert len(found) == 1, found
    card = found[0]
    assert card.key == "say-progress" and card.task_run_id is not None
    assert card.data == 100.0
    assert card.description.startswith("Progress of step `say` (test/halfway): 100% · done in ")
