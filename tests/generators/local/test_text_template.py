"""local/text-template: renders {name} placeholders, names what is missing, refuses anything beyond plain names."""

from __future__ import annotations

import pytest

from generators.errors import InputValidationError
from generators.local.text_template import TextTemplate

gen = TextTemplate()


async def test_renders_the_template_and_stores_the_text(ctx, store):
    result = await gen.run(
        {
            "template": '  A {style} photo of {subject}, {count} of them; JSON looks like {{"k": 1}}.\n',
            "parameters": {"style": "moody", "subject": "a lighthouse", "count": 3.0, "unused": "ignored"},
        },
        ctx,
    )
    text = result.primary
    expected = 'A moody photo of a lighthouse, 3 of them; JSON looks like {"k": 1}.'
    assert text.content == expected
    assert (await ctx.resolve_artifact(text)).read_text(encoding="utf-8") == expected
    assert text.format == "txt" and text.generator == "local/text-template"
    assert result.estimated_cost_usd == 0 and result.compute_seconds >= 0


async def test_same_placeholder_twice_and_whitespace_kept_when_asked(ctx):
    result = await gen.run({"template": " {x}-{x} ", "parameters": {"x": "ab", "flag": True}, "strip": False}, ctx)
    assert result.primary.content == " ab-ab "
    result = await gen.run({"template": "{flag}/{n}", "parameters": {"flag": True, "n": 2.5}}, ctx)
    assert result.primary.content == "True/2.5"


def test_missing_variables_are_named():
    with pytest.raises(InputValidationError) as info:
        gen.parse_inputs({"template": "A {style} photo of {subject} at {time}", "parameters": {"style": "moody"}})
    message = str(info.value)
    assert "'subject', 'time'" in message and "{subject}" in message and "given: style" in message
    assert "local/text-template" in message


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("Hello {user.name}", "{user.name}"),
        ("Hello {users[0]}", "{users[0]}"),
        ("Hello {0}", "{0}"),
        ("Hello {}", "an empty {}"),
        ("Hello {name!r}", "{name!r} has a conversion or format spec"),
        ("Total {price:>10}", "{price:>10} has a conversion or format spec"),
        ("Unclosed {name", "braces do not balance"),
        ("Stray } brace", "braces do not balance"),
        ("", "at least 1 character"),
    ],
)
def test_anything_beyond_plain_names_is_refused(template, message):
    with pytest.raises(InputValidationError) as info:
        gen.parse_inputs({"template": template, "parameters": {"name": "x", "price": 3, "user": "u", "users": "u"}})
    assert any(message in text for _, text in info.value.problems), info.value.problems


def test_parameter_values_must_be_plain_scalars():
    with pytest.raises(InputValidationError) as info:
        gen.parse_inputs({"template": "{x}", "parameters": {"x": {"nested": 1}}})
    assert any(path.startswith("parameters.x") for path, _ in info.value.problems), info.value.problems
