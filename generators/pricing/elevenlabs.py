"""ElevenLabs prices: API usage billed in credits; speech per character, sound effects per generation."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from . import Price, PriceTable

CHECKED = dt.date(2026, 11, 25)
API_PRICING = "https://elevenlabs.io/pricing/api"

ELEVENLABS_PRICES = PriceTable(
    "elevenlabs",
    {
        # $0.10 per 1,000 characters; one character is one credit on these models.
        "eleven_multilingual_v2": Price(Decimal("0.10") / 1000, "character", API_PRICING, CHECKED),
        "eleven_v3": Price(Decimal("0.10") / 1000, "character", API_PRICING, CHECKED),
        # $0.05 per 1,000 characters; half a credit per character.
        "eleven_flash_v2_5": Price(Decimal("0.05") / 1000, "character", API_PRICING, CHECKED),
        "eleven_turbo_v2_5": Price(Decimal("0.05") / 1000, "character", API_PRICING, CHECKED),
        "sound-effects": Price(Decimal("0.12"), "generation", API_PRICING, CHECKED),
        # The `character-cost` response header counts credits; both speech tiers price a credit alike.
        "credit": Price(Decimal("0.10") / 1000, "credit", API_PRICING, CHECKED),
    },
)
