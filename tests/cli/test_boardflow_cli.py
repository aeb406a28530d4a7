"""The `boardflow` command: help everywhere, plan (good, bad, over budget), generators list/show, lineage."""

from __future__ import annotations

import asyncio
import json

import pytest
import typer.main
import yaml
from typer.testing import CliRunner

from cli.app import app
from generators.context import GeneratorContext
from tests.flows.kit import Echo
from tests.flows.test_pipeline_validation import BAD, EXPECTED

WIDE = {"COLUMNS": "200"}  # rich would cut long cells to 80 columns otherwise


def invoke(*args: str):
    return CliRunner().invoke(app, list(args), env=WIDE)


def command_paths(group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    paths = []
    for name, command in group.commands.items():
        paths.append((*prefix, name))
        if hasattr(command, "commands"):  # a sub-group (typer may vendor its own click classes)
            paths += command_paths(command, (*prefix, name))
    return paths


def test_every_command_has_help():
    paths = command_paths(typer.main.get_command(app))
    expected = {("plan",), ("run",), ("demo",), ("costs",), ("lineage",), ("generators", "list")}
    expected.add(("generators", "show"))
    assert expected <= set(paths)
    for path in [(), *paths]:
        result = invoke(*path, "--help")
        assert result.exit_code == 0, (path, result.output)
        assert "Usage:" in result.output and len(result.output.splitlines()) > 4, path


def test_plan_prints_the_steps_and_the_cost_plan(data_dir, registry):
    result = invoke("plan", "storyboard")
    assert result.exit_code == 0, result.output
    out = result.output
    assert "Plan for storyboard" in out and "Order:" in out
    for step, generator in [("narration", "local/tts"), ("clip", "local/ken-burns"), ("final", "local/mix")]:
        row = next(line for line in out.splitlines() if f" {step} " in line)
        assert generator in row
    assert "$0.00 (cap $5.00)" in out


def test_plan_of_a_bad_spec_lists_every_problem_without_a_traceback(data_dir, registry, tmp_path):
    spec = tmp_path / "bad.yaml"
    spec.write_text(yaml.safe_dump(BAD))
    result = invoke("plan", str(spec))
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert "nothing was run" in result.output
    for step, field, _ in EXPECTED:
        assert f"{step}.{field}:" in result.output
    assert "boardflow plan SPEC" in result.output  # what to do next


def test_plan_over_the_cap_exits_2(data_dir, registry, tmp_path):
    registry.register(Echo("test/paid", estimate="0.30"))
    spec = tmp_path / "pricey.yaml"
    steps = {f"s{i}": {"generator": "test/paid", "inputs": {"text": f"take {i}"}} for i in range(3)}
    spec.write_text(yaml.safe_dump({"name": "pricey", "max_cost_usd": 0.5, "steps": steps}))
    result = invoke("plan", str(spec))
    assert result.exit_code == 2
    assert "$0.90 (cap $0.50)" in result.output and "Over budget" in result.output


def test_generators_list_says_what_runs_here_and_how_to_fix_the_rest(registry):
    result = invoke("generators", "list")
    assert result.exit_code == 0, result.output
    rows = {line.split()[0]: line for line in result.output.splitlines() if "/" in line}
    assert "yes" in rows["local/ken-burns"]
    assert "no" in rows["openai/gpt-image-2"] and "OPENAI_API_KEY" in rows["openai/gpt-image-2"]
    assert "boardflow generators show ID" in result.output  # where the fix is
    shown = " ".join(invoke("generators", "show", "openai/gpt-image-2").output.split())
    assert "to enable it: Set OPENAI_API_KEY" in shown and "https://" in shown
    listed = json.loads(invoke("generators", "list", "--json", "--type", "video").output)
    assert {g["type"] for g in listed} == {"video"} and "local/ken-burns" in {g["id"] for g in listed}


def test_generators_show_prints_schemas_and_cost_model(registry):
    result = invoke("generators", "show", "local/ken-burns")
    assert result.exit_code == 0, result.output
    for words in ("local/ken-burns", "cost model:", "input schema:", "output schema:", '"motion"', "640x360"):
        assert words in result.output
    unknown = invoke("generators", "show", "local/ken-burn")
    assert unknown.exit_code == 1 and "Did you mean: local/ken-burns" in unknown.output
    assert "Traceback" not in unknown.output


@pytest.fixture
def clip_in_store(data_store):
    """A still and a Ken Burns clip made from it, straight through the generators (no Prefect)."""
    from generators.local.ken_burns import KenBurnsGenerator
    from generators.local.procedural_image import ProceduralImageGenerator

    async def make():
        async with GeneratorContext(data_store, step="still") as ctx:
            still = (await ProceduralImageGenerator().run({"prompt": "a kite", "size": "512x512"}, ctx)).primary
        async with GeneratorContext(data_store, step="clip") as ctx:
            inputs = {"image": still, "resolution": "320x180", "duration": 1, "fps": 24}
            return still, (await KenBurnsGenerator().run(inputs, ctx)).primary

    return asyncio.run(make())


def test_lineage_walks_back_from_a_clip_to_its_still(data_dir, clip_in_store):
    still, clip = clip_in_store
    result = invoke("lineage", clip.sha256[:10])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    clip_line = next(i for i, line in enumerate(lines) if clip.short in line)
    still_line = next(i for i, line in enumerate(lines) if still.short in line)
    assert "local/ken-burns" in lines[clip_line] and "local/procedural-image" in lines[still_line]
    assert still_line > clip_line, "the still should hang under the clip"
    assert invoke("lineage", "zz").exit_code == 1


def test_generators_list_shows_each_models_status_and_json_has_the_day_and_replacement(registry):
    result = CliRunner().invoke(app, ["generators", "list"], env={"COLUMNS": "80"})
    rows = {line.split()[0]: line for line in result.output.splitlines() if line.split() and "/" in line.split()[0]}
    assert "shut down" in rows["openai/gpt-image-1"] and "deprecated" in rows["openai/tts-1"]
    assert "active" in rows["openai/gpt-image-2"] and "active" in rows["local/ken-burns"]
    listed = {g["id"]: g for g in json.loads(invoke("generators", "list", "--json").output)}
    gone = listed["openai/gpt-image-1"]
    expected = ("shut_down", "2026-10-23", "openai/gpt-image-2")
    assert (gone["status"], gone["status_date"], gone["replacement"]) == expected
    assert listed["fal/nano-banana"]["priced"] is False and listed["fal/flux-dev"]["priced"] is True
