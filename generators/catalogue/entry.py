"""One hosted model as data: a catalogue entry (YAML), parsed into a `HostedSpec` a provider's generator runs.

An entry names the provider's model, the artifact kind it makes, its input schema (JSON Schema, with
`x-artifact` on fields that take artifacts), how its outputs map to artifacts, its price rule and its
lifecycle, and for the schema and the price where they were read and on which day.
"""

from __future__ import annotations

import ast
import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..errors import ConfigurationError
from ..pricing import Price
from . import expr
from .schema import input_model

Status = Literal["active", "deprecated", "shut_down"]


class _Doc(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LifecycleDoc(_Doc):
    status: Status = "active"
    date: dt.date | None = Field(None, description="deprecated: the announced shut-down day; shut_down: the day.")
    replacement: str | None = Field(None, description="The boardflow id to use instead.")
    note: str | None = Field(None, description="What to do when boardflow has no replacement entry (say why).")
    source: str | None = None
    checked: dt.date | None = None


class TermDoc(_Doc):
    usd: Decimal = Field(description="Price of one unit.")
    unit: str
    units: str = Field("1", description="A formula over the inputs: how many units one step buys.")
    reported: str | None = Field(None, description="The provider-reported quantity this term bills, if any.")
    estimate: bool = Field(True, description="False: the term prices the reported quantity only.")
    note: str = ""


class PriceDoc(_Doc):
    source: str
    checked: dt.date
    unknown: bool = Field(False, description="True when no published price could be found.")
    terms: list[TermDoc] = []
    note: str = ""


class CheckDoc(_Doc):
    require: str
    message: str


class EntryDoc(_Doc):
    id: str
    provider: str
    model: str = Field(description="The provider's own id: endpoint, owner/name, or model name.")
    kind: Literal["image", "video", "audio", "text"]
    description: str
    version: str | None = None  # Replicate: a community model runs by version id
    endpoint: str | None = None  # OpenAI / ElevenLabs: which API path
    input: dict[str, Any]
    checks: list[CheckDoc] = []
    schema_source: str
    schema_checked: dt.date
    output: dict[str, Any] = {}
    price: PriceDoc
    tables: dict[str, Any] = {}
    lifecycle: LifecycleDoc = Field(default_factory=lambda: LifecycleDoc(date=None, replacement=None, note=None))
    max_wait_s: float = 900.0


@dataclass(frozen=True)
class Lifecycle:
    status: Status = "active"
    date: dt.date | None = None
    replacement: str | None = None
    source: str | None = None
    note: str | None = None

    def label(self) -> str:
        """A short status for one table cell: `active`, `deprecated 2027-01-06`, `shut down 2026-10-23`."""
        when = f" {self.date.isoformat()}" if self.date else ""
        return {"active": "active", "deprecated": f"deprecated{when}", "shut_down": f"shut down{when}"}[self.status]

    def message(self, name: str, provider: str) -> str:
        """What a user reads about a model that is going or gone, with the day and what to use instead."""
        instead = f" Use {self.replacement} instead." if self.replacement else f" {self.note}" if self.note else ""
        when = f" on {self.date.isoformat()}" if self.date else ""
        source = f" ({self.source})" if self.source else ""
        if self.status == "shut_down":
            return f"{name}: {provider} shut this model down{when}{source}.{instead}"
        if self.status == "deprecated":
            return f"{name}: {provider} deprecated this model; it shuts down{when}{source}.{instead}"
        return ""


@dataclass(frozen=True)
class PriceTerm:
    price: Price
    units: ast.Expression
    formula: str
    reported: str | None
    in_estimate: bool = True


@dataclass(frozen=True)
class PriceRule:
    """What one step costs: a sum of terms (price x units), or unknown."""

    terms: tuple[PriceTerm, ...]
    source: str
    checked: dt.date
    unknown: bool = False
    note: str = ""

    def estimate(
        self, inputs: BaseModel, tables: Mapping[str, Any], functions: Mapping[str, Callable[..., Any]]
    ) -> Decimal | None:
        """The estimate in USD for these inputs; None when the price is unknown."""
        if self.unknown:
            return None
        names = {**tables, **{f: getattr(inputs, f, None) for f in type(inputs).model_fields}}
        total = Decimal(0)
        for term in (t for t in self.terms if t.in_estimate):
            total += term.price.times(expr.evaluate(term.units, names, {**expr.BUILTINS, **functions}))
        return total

    def reported(self, amounts: Mapping[str, Decimal | int | float]) -> Decimal | None:
        """The actual cost from quantities the provider reported (tokens, credits, seconds); None if none apply."""
        billed = [t for t in self.terms if t.reported]
        if not billed or any(t.reported not in amounts for t in billed):
            return None
        return sum((t.price.times(amounts[t.reported or ""]) for t in billed), Decimal(0))

    def describe(self) -> str:
        if self.unknown:
            return f"unknown: no published price found (checked {self.checked.isoformat()}, {self.source})"
        parts = " + ".join(f"${t.price.usd} per {t.price.unit}" for t in self.terms if t.in_estimate)
        billed = [f"${t.price.usd} per {t.price.unit}" for t in self.terms if not t.in_estimate]
        actual = f"; billed at {', '.join(billed)} reported" if billed else ""
        return f"{parts}{actual} (checked {self.checked.isoformat()}, {self.source})"


@dataclass(frozen=True)
class HostedSpec:
    """A parsed catalogue entry: everything a provider's generator class needs to run one model."""

    id: str
    provider: str
    model: str
    artifact_type: str
    description: str
    input: type[BaseModel]
    pricing: PriceRule
    schema_source: str
    schema_checked: dt.date
    lifecycle: Lifecycle = Lifecycle()
    output: Mapping[str, Any] = field(default_factory=dict)
    tables: Mapping[str, Any] = field(default_factory=dict)
    version: str | None = None
    endpoint: str | None = None
    max_wait_s: float = 900.0
    doc: Mapping[str, Any] = field(default_factory=dict)  # the entry as written, for `generators show` and export

    @property
    def price(self) -> Price | None:
        """The first price term (most models have one), or None when the price is unknown."""
        return self.pricing.terms[0].price if self.pricing.terms else None

    @property
    def input_schema(self) -> dict[str, Any]:
        return dict(self.doc["input"])


def parse_entry(raw: Mapping[str, Any], where: str) -> HostedSpec:
    """A HostedSpec from one entry's mapping; any mistake is a ConfigurationError naming `where` and the field."""
    try:
        doc = EntryDoc.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        at = ".".join(str(p) for p in first["loc"])
        raise ConfigurationError(
            f"{where}: catalogue entry {raw.get('id', '?')!r} is not valid ({at}: {first['msg']}).",
            hint="See docs/catalogue.md for the fields an entry takes.",
        ) from None
    label = f"{where}: {doc.id}"
    price = doc.price
    if not price.unknown and not price.terms:
        raise ConfigurationError(f"{label}: price has no terms; write `unknown: true` if no price is published.")
    terms = tuple(
        PriceTerm(
            Price(t.usd, t.unit, price.source, price.checked, t.note),
            expr.check(t.units, f"{label} price"),
            t.units,
            t.reported,
            t.estimate,
        )
        for t in price.terms
    )
    life = doc.lifecycle
    if life.status != "active" and not life.date:
        raise ConfigurationError(f"{label}: a {life.status} entry needs the date (and its replacement).")
    if life.status != "active" and not (life.replacement or life.note):
        raise ConfigurationError(f"{label}: a {life.status} entry names its replacement, or says in `note` why none.")
    return HostedSpec(
        id=doc.id,
        provider=doc.provider,
        model=doc.model,
        artifact_type=doc.kind,
        description=doc.description,
        input=input_model(doc.id, doc.input, [c.model_dump() for c in doc.checks]),
        pricing=PriceRule(terms, price.source, price.checked, price.unknown, price.note),
        schema_source=doc.schema_source,
        schema_checked=doc.schema_checked,
        lifecycle=Lifecycle(life.status, life.date, life.replacement, life.source, life.note),
        output=doc.output,
        tables=doc.tables,
        version=doc.version,
        endpoint=doc.endpoint,
        max_wait_s=doc.max_wait_s,
        doc=doc.model_dump(mode="json", exclude_defaults=True),
    )
