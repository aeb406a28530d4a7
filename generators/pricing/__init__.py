"""Price tables, one module per provider; every row names its unit, its source URL and when it was checked."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from ..errors import ConfigurationError

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


class PriceTable(dict[str, Price]):
    """Prices by model id; a missing row is a configuration error that says where prices live."""

    def __init__(self, provider: str, rows: dict[str, Price]) -> None:
        super().__init__(rows)
        self.provider = provider

    def __missing__(self, key: str) -> Price:
        raise ConfigurationError(
            f"No {self.provider} price for {key!r}.",
            hint=f"Add a row to generators/pricing/{self.provider}.py with the price, its source URL and the date.",
        )


__all__ = ["Price", "PriceTable"]
