"""Static checks before any spend: every problem of a spec at once, each with its step and field; the cost plan."""

from __future__ import annotations

from decimal import Decimal

import pytest

from flows.pipeline import plan_pipeline
from flows.pipeline.spec import PipelineSpec
from flows.pipeline.validate import PipelineValidationError, validate
from flows.storyboard import load_spec
from generators.errors import InputError
from tests.flows.kit import Echo

BAD = {
    "name": "bad",
    "params": {"scenes": {"type": "list", "default": []}},
    "steps": {
        "still": {"generator": "local/procedural-imag", "inputs": {"prompt": "a harbour"}},
        "pic": {
            "generator": "local/procedural-image",
            "inputs": {"prompt": "${params.sceens}", "size": "13x13", "colour": "red"},
        },
        "voice": {"generator": "local/tts", "inputs": {"text": "hello"}},
        "clip": {"generator": "local/ken-burns", "inputs": {"image": "${steps.voice.audio}"}},
        "zoom": {"generator": "local/ken-burns", "inputs": {"image": "${steps.pic.picture}"}},
        "pan": {"generator": "local/ken-burns", "inputs": {"image": "${steps.pik.image}"}},
        "ask": {"generator": "local/text-template", "inputs": {"template": "${steps.answer.text.content}"}},
        "answer": {"generator": "local/text-template", "inputs": {"template": "${steps.ask.text.content}"}},
        "paid": {"generator": "openai/gpt-image-2", "inputs": {"prompt": "a cat"}},
    },
}

# (step, field, words the message must hold): one per mistake planted in BAD.
EXPECTED = [
    ("still", "generator", ["local/procedural-imag", "Did you mean", "local/procedural-image"]),
    ("pic", "prompt", ["no parameter 'sceens'", "did you mean 'scenes'"]),
    ("pic", "size", ["'512x512'"]),
    ("pic", "colour", ["has no input 'colour'"]),
    ("clip", "image", ["expects image", "is audio"]),
    ("zoom", "image", ["has no output 'picture'", "its outputs are image"]),
    ("pan", "image", ["no step 'pik'", "did you mean 'pic'"]),
    ("paid", "generator", ["OPENAI_API_KEY is not set", "platform.openai.com"]),
]


def test_every_problem_of_a_bad_spec_is_reported_together(registry):
    with pytest.raises(PipelineValidationError) as caught:
        validate(PipelineSpec.parse(BAD), registry)
    problems = caught.value.problems
    for step, field, words in EXPECTED:
        matching = [p for p in problems if p.step == step and p.field == field]
        assert matching, f"no problem reported for {step}.{field}: {problems}"
        assert all(w in matching[0].message for w in words), matching[0]
    cycles = [p for p in problems if "cycle" in p.message]
    assert len(cycles) == 1 and {"ask", "answer"} <= set(cycles[0].message.replace("→", " ").split())
    assert len(problems) == len(EXPECTED) + 1, "\n".join(map(str, problems))
    text = str(caught.value)
    assert f"{len(problems)} problem(s); nothing was run" in text
    assert all(f"{step}.{field}:" in text for step, field, _ in EXPECTED)


def test_a_good_spec_validates_to_a_runnable_order(registry):
    order = validate(load_spec(), registry)
    assert set(order) == set(load_spec().steps)
    for before, after in [("image", "clip"), ("narration", "clip"), ("clip", "narrated"), ("cut", "music")]:
        assert order.index(before) < order.index(after)


def test_a_malformed_spec_lists_every_field_it_got_wrong():
    with pytest.raises(InputError) as caught:
        PipelineSpec.parse({"name": "Bad Name!", "steps": {"s": {"generatr": "local/tts"}}, "extra": 1})
    text = str(caught.value)
    assert "name:" in text and "steps.s.generator:" in text and "steps.s.generatr:" in text and "extra:" in text


def test_parameters_are_type_checked_and_unknown_ones_refused():
    spec = load_spec()
    assert spec.resolve_params({"fps": "24"})["fps"] == 24
    with pytest.raises(InputError, match="'fps' must be an integer"):
        spec.resolve_params({"fps": "fast"})
    with pytest.raises(InputError, match="Unknown parameter.*colour") as caught:
        spec.resolve_params({"colour": "red"})
    assert "mood" in caught.value.hint


def test_resolved_parameters_resolve_to_themselves():
    # A batch row's parameters are resolved when it is planned and again by the `pipeline` deployment run that
    # a worker starts for it (batch --on-workers): an optional parameter left out (None) failed the second time
    # with "Parameter 'caption' must be a string, got NoneType None".
    spec = PipelineSpec.resolve("slideshow")
    once = spec.resolve_params({"prompt": "a lighthouse", "mood": "calm"})
    assert once["caption"] is None
    assert spec.resolve_params(once) == once
    with pytest.raises(InputError, match="'prompt' is required"):
        spec.resolve_params({**once, "prompt": None})


async def test_the_plan_counts_fan_out_runs_and_prices_each_step(registry, data_store):
    registry.register(Echo("test/paid", estimate="0.25"))
    spec = PipelineSpec.parse(
        {
            "name": "priced",
            "params": {"lines": {"type": "list", "default": ["one", "two", "three"]}},
            "max_cost_usd": "0.50",
            "steps": {
                "say": {"generator": "test/paid", "for_each": "${params.lines}", "inputs": {"text": "${item}"}},
                "sum": {"generator": "test/paid", "inputs": {"text": "all", "source": "${steps.say[0].text}"}},
            },
        }
    )
    plan = await plan_pipeline(spec, {}, data_store)
    assert [(s.step, s.count) for s in plan.steps] == [("say", 3), ("sum", 1)]
    assert plan.total_usd == Decimal("1.00") and plan.over_budget
    assert [s.uncertain for s in plan.steps] == [False, True]  # `sum` reads an output that does not exist yet
    assert not (await plan_pipeline(spec, {"lines": ["one"]}, data_store)).over_budget
