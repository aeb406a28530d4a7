"""Hostile specs, values, cells and sidecars get a clear refusal, quickly and with memory bounded."""

from __future__ import annotations

import asyncio
import json
import resource
import time

import pytest
import yaml
from typer.testing import CliRunner

from cli.app import app
from flows.batch.rows import row_params
from flows.pipeline.safe_yaml import MAX_DEPTH, load_yaml
from flows.pipeline.spec import PipelineSpec
from generators.errors import InputError
from generators.storage import sidecar_key
from tests.flows.kit import Echo

# Nine levels of nine aliases: under 400 bytes that stand for 9**9 (387 million) strings once expanded.
LAUGHS = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"{c}: &{c} [{', '.join([f'*{p}'] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi", strict=True)
)


def invoke(*args: str):
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def test_a_billion_laughs_spec_is_refused_with_its_line_before_it_expands(data_dir, registry, tmp_path):
    spec = tmp_path / "laughs.yaml"
    spec.write_text("name: laughs\nsteps: {s: {generator: local/text-template, inputs: {template: x}}}\n" + LAUGHS)
    before, started = peak_rss_mib(), time.monotonic()
    for command in ("run", "plan"):
        result = invoke(command, str(spec))
        assert result.exit_code == 1 and "Traceback" not in result.output, result.output
        assert "aliases expand to more than" in result.output and "line" in result.output, result.output
    assert time.monotonic() - started < 20
    assert peak_rss_mib() - before < 100, "the aliases were expanded"


def test_deep_nesting_and_recursive_aliases_are_refused_in_a_few_lines():
    deep = "[" * 100_000 + "]" * 100_000
    with pytest.raises(InputError, match=f"nests deeper than {MAX_DEPTH} levels") as caught:
        load_yaml(deep, "the value of -p x")
    assert len(str(caught.value).splitlines()) < 5
    with pytest.raises(InputError, match="recursive alias"):
        load_yaml("a: &a [1, *a]", "spec.yaml")
    with pytest.raises(InputError, match="over the 1,000-byte limit"):
        load_yaml("x" * 2000, "cell", max_bytes=1000)
    assert load_yaml("a: &x [1, 2]\nb: *x", "ok") == {"a": [1, 2], "b": [1, 2]}, "plain aliases still work"


def test_a_laughing_cell_is_one_bad_row_not_a_dead_batch():
    spec = PipelineSpec.parse(
        {
            "name": "cells",
            "params": {"items": {"type": "list"}, "word": {"type": "string"}},
            "steps": {"s": {"generator": "test/echo", "inputs": {"text": "${params.word}"}}},
        }
    )
    row = row_params(spec, 3, {"items": LAUGHS.replace("\n", "\n"), "word": "hi"}, {})
    assert not row.valid
    (problem,) = row.problems
    assert (problem.row, problem.column) == (3, "items") and "aliases expand" in problem.reason


def test_step_task_options_are_checked_with_their_place_and_tags_work(prefect_api, data_dir, registry, tmp_path):
    registry.register(Echo())
    bad = {"name": "opts", "steps": {"s": {"generator": "test/echo", "inputs": {"text": "x"}, "task": {"retriez": 3}}}}
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(bad))
    result = invoke("plan", str(path))
    assert result.exit_code == 1 and "steps.s.task.retriez" in result.output, result.output
    good = {
        "name": "opts",
        "steps": {"s": {"generator": "test/echo", "inputs": {"text": "x"}, "task": {"tags": ["x"]}}},
    }
    path.write_text(yaml.safe_dump(good))
    result = invoke("run", str(path))
    assert result.exit_code == 0, result.output  # was: "unhashable type: 'list'"


def _sidecar(store, sha: str, meta: dict) -> None:
    asyncio.run(store.write_json(sidecar_key(sha), meta))


@pytest.mark.parametrize(
    "meta, shown",
    [
        ({"type": "image", "made_by": "not a list"}, "unreadable sidecar"),
        ({"type": "image", "width": "wide", "made_by": []}, "unreadable sidecar"),
        (
            {"type": "[bold red]image", "format": "[/]png", "made_by": [{"generator": "x/[link=evil]"}]},
            "[bold red]image",
        ),
        ({"type": "image\x1b[31m\x1b]0;owned\x07", "made_by": [{"generator": "g\x1b[2J"}]}, "image"),
    ],
)
def test_lineage_shows_a_tampered_sidecar_without_crashing_or_obeying_it(data_dir, data_store, meta, shown):
    sha = "ab" * 32
    _sidecar(data_store, sha, meta)
    result = invoke("lineage", sha)
    assert result.exit_code == 0, result.output
    assert shown in result.output and "Traceback" not in result.output
    assert "\x1b" not in result.output and "\x07" not in result.output


def test_a_3000_deep_parent_chain_is_cut_not_a_recursion_error(data_dir, data_store):
    shas = [f"{i:064x}" for i in range(1, 3001)]
    for sha, parent in zip(shas, shas[1:], strict=False):
        _sidecar(
            data_store, sha, {"type": "image", "format": "png", "made_by": [{"generator": "g", "parents": [parent]}]}
        )
    result = invoke("lineage", shas[0])
    assert result.exit_code == 0 and "Traceback" not in result.output, result.output[-2000:]
    assert "deeper lineage not shown" in result.output
    assert len(result.output.splitlines()) < 200


def test_json_output_of_plan_is_one_document(data_dir, registry):
    result = invoke("plan", "storyboard", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["pipeline"] == "storyboard" and len(data["steps"]) == 7 and data["over_budget"] is False
