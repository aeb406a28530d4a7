"""A price as published: USD per unit, its source URL and the day it was checked (catalogue entries use it)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

TEN_BILLIONTH = Decimal("1e-10")


@dataclass(frozen=True)
class Price:
    """What a provider charges for one unit of something, as published at `source` on `checked`."""

    usd: Decimal
    unit: str  # "megapixel", "image", "second of video", "character", "compute second", "minute of audio"…
    source: str
    checked: dt.date
    note: str = ""

    def times(self, units: Decimal | int | float) -> Decimal:
        """The cost of `units` units, to a ten-billionth of a dollar; floats go through str() so 0.1 stays 0.1."""
        amount = self.usd * (units if isinstance(units, Decimal) else Decimal(str(units)))
        rounded = amount.quantize(TEN_BILLIONTH, rounding=ROUND_HALF_UP)
        # Drop trailing zeros (0.0250000000 -> 0.025) without normalize()'s exponent form for whole dollars.
        return rounded.quantize(Decimal(1)) if rounded == rounded.to_integral() else rounded.normalize()

    def describe(self) -> str:
        return f"${self.usd} per {self.unit} (checked {self.checked.isoformat()}, {self.source})"


__all__ = ["Price"]
