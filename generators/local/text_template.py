"""local/text-template: render `{name}` placeholders from parameters, for composing prompts and narration."""

from __future__ import annotations

import re
import string
import time
from decimal import Decimal
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..artifacts import TextArtifact
from ..base import BaseGenerator
from ..context import GeneratorContext

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_FORMATTER = string.Formatter()


def placeholders(template: str) -> list[str]:
    """The names a template uses, in order of first use; ValueError for anything outside the safe subset.

    The subset is `{name}` and the `{{`/`}}` escapes. Attribute access, indexing, positional fields,
    conversions and format specs are refused: a template from a CSV row must not reach into objects.
    """
    names: list[str] = []
    try:
        parsed = list(_FORMATTER.parse(template))
    except ValueError as exc:  # unbalanced braces
        raise ValueError(f"template braces do not balance ({exc}); write {{{{ and }}}} for literal braces") from None
    for _, field, spec, conversion in parsed:
        if field is None:
            continue
        if not _NAME.match(field):
            what = "an empty {}" if field == "" else f"{{{field}}}"
            raise ValueError(
                f"template has {what}; placeholders are {{name}} with letters, digits and _ "
                f"(not starting with a digit), and {{{{ }}}} for literal braces"
            )
        if spec or conversion:
            shown = f"{{{field}{'!' + conversion if conversion else ''}{':' + spec if spec else ''}}}"
            raise ValueError(
                f"template placeholder {shown} has a conversion or format spec; only {{{field}}} "
                f"is supported — format the value before passing it"
            )
        if field not in names:
            names.append(field)
    return names


class TextTemplateInput(BaseModel):
    """Inputs of local/text-template."""

    model_config = ConfigDict(extra="forbid")

    template: str = Field(
        min_length=1,
        max_length=100_000,
        description="Text with {name} placeholders (Python str.format syntax, names only: no "
        "attributes, indexes or format specs); {{ and }} give literal braces. Not "
        "${name}, which pipeline specs use for their own references.",
    )
    parameters: dict[str, str | int | float | bool] = Field(
        default_factory=dict, description="Value for each placeholder; extra entries are ignored."
    )
    strip: bool = Field(default=True, description="Trim whitespace from both ends of the result.")

    @model_validator(mode="after")
    def _all_placeholders_given(self) -> Self:
        missing = [name for name in placeholders(self.template) if name not in self.parameters]
        if missing:
            given = ", ".join(sorted(self.parameters)) or "none"
            names = ", ".join(f"{{{name}}}" for name in missing)
            raise ValueError(
                f"template uses {names} but parameters has no value for "
                f"{', '.join(repr(n) for n in missing)} (given: {given})"
            )
        return self

    def render(self) -> str:
        text = self.template.format_map({k: _as_text(v) for k, v in self.parameters.items()})
        return text.strip() if self.strip else text


def _as_text(value: str | int | float | bool) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # 3.0 from a spreadsheet column reads as "3" in a prompt
    return str(value)


class TextTemplateOutput(BaseModel):
    text: TextArtifact


class TextTemplate(BaseGenerator):
    name = "local/text-template"
    artifact_type = "text"
    description = "Renders a text template with {name} placeholders from parameters (prompts, narration)."

    def get_input_schema(self) -> type[TextTemplateInput]:
        return TextTemplateInput

    def get_output_schema(self) -> type[TextTemplateOutput]:
        return TextTemplateOutput

    async def estimate_cost(self, inputs: TextTemplateInput) -> Decimal:
        return Decimal("0")

    async def generate(self, inputs: TextTemplateInput, context: GeneratorContext) -> TextTemplateOutput:
        started = time.perf_counter()
        artifact = await context.store_text_result(inputs.render())
        context.record_compute_seconds(time.perf_counter() - started)
        return TextTemplateOutput(text=artifact)
