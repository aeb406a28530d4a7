"""fal.ai prices: per megapixel of output (rounded up per image) or per second of video."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from . import Price, PriceTable

CHECKED = dt.date(2026, 11, 25)

FAL_PRICES = PriceTable(
    "fal",
    {
        # "Images are billed by rounding up to the nearest megapixel" (model playground pages); a
        # 1024x1024 image costs one unit, so fal's megapixel is 2**20 pixels.
        "fal-ai/flux/dev": Price(Decimal("0.025"), "megapixel", "https://fal.ai/models/fal-ai/flux/dev", CHECKED),
        "fal-ai/flux/schnell": Price(
            Decimal("0.003"), "megapixel", "https://fal.ai/models/fal-ai/flux/schnell", CHECKED
        ),
        "fal-ai/clarity-upscaler": Price(
            Decimal("0.03"),
            "megapixel",
            "https://fal.ai/models/fal-ai/clarity-upscaler/llms.txt",
            CHECKED,
            note="charged on the upscaled output",
        ),
        # Kling: "For 5s video your request will cost $0.28. For every additional second $0.056" = $0.056/s.
        "fal-ai/kling-video/v2.1/standard/image-to-video": Price(
            Decimal("0.056"),
            "second of video",
            "https://fal.ai/models/fal-ai/kling-video/v2.1/standard/image-to-video/llms.txt",
            CHECKED,
        ),
        # Kling 2.5 Turbo Pro: $0.35 for 5 s and $0.07 for every additional second = $0.07/s.
        "fal-ai/kling-video/v2.5-turbo/pro/text-to-video": Price(
            Decimal("0.07"),
            "second of video",
            "https://fal.ai/models/fal-ai/kling-video/v2.5-turbo/pro/text-to-video/llms.txt",
            CHECKED,
        ),
    },
)
