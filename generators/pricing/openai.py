"""OpenAI prices: gpt-image-1 by tokens (image output tokens fixed per size and quality), speech, transcription."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from . import Price, PriceTable

CHECKED = dt.date(2026, 11, 25)
PRICING = "https://openai.com/api/pricing/"
IMAGE_GUIDE = "https://platform.openai.com/docs/guides/image-generation"

OPENAI_PRICES = PriceTable(
    "openai",
    {
        "gpt-image-1:text-input": Price(Decimal("5.00") / 1_000_000, "text input token", PRICING, CHECKED),
        "gpt-image-1:image-input": Price(Decimal("10.00") / 1_000_000, "image input token", PRICING, CHECKED),
        "gpt-image-1:image-output": Price(Decimal("40.00") / 1_000_000, "image output token", PRICING, CHECKED),
        "tts-1": Price(Decimal("15.00") / 1_000_000, "character", PRICING, CHECKED),
        "tts-1-hd": Price(Decimal("30.00") / 1_000_000, "character", PRICING, CHECKED),
        "whisper-1": Price(Decimal("0.006"), "minute of audio", PRICING, CHECKED),
    },
)

# Output tokens gpt-image-1 spends on one image, by quality and size (image generation guide).
IMAGE_OUTPUT_TOKENS: dict[str, dict[str, int]] = {
    "low": {"1024x1024": 272, "1024x1536": 408, "1536x1024": 400},
    "medium": {"1024x1024": 1056, "1024x1536": 1584, "1536x1024": 1568},
    "high": {"1024x1024": 4160, "1024x1536": 6240, "1536x1024": 6208},
}

# Each input image costs image tokens too; a 1024x1024 input is 765 tokens at high fidelity
# detail (85 base + 170 per 512 px tile), which the estimate uses per input image.
IMAGE_INPUT_TOKENS_PER_IMAGE = 765
