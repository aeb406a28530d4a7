"""Replicate prices: official models per output, community models per second of hardware time."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from . import Price, PriceTable

CHECKED = dt.date(2026, 11, 25)
HARDWARE_SOURCE = "https://replicate.com/pricing"

# Per-second hardware prices; a community model is billed metrics.predict_time x its hardware's price.
HARDWARE = PriceTable(
    "replicate",
    {
        "cpu": Price(Decimal("0.000100"), "compute second", HARDWARE_SOURCE, CHECKED),
        "gpu-t4": Price(Decimal("0.000225"), "compute second", HARDWARE_SOURCE, CHECKED),
        "gpu-l40s": Price(Decimal("0.000975"), "compute second", HARDWARE_SOURCE, CHECKED),
        "gpu-a100-large": Price(Decimal("0.001400"), "compute second", HARDWARE_SOURCE, CHECKED),
        "gpu-h100": Price(Decimal("0.001525"), "compute second", HARDWARE_SOURCE, CHECKED),
    },
)

REPLICATE_PRICES = PriceTable(
    "replicate",
    {
        "black-forest-labs/flux-schnell": Price(
            Decimal("0.003"), "image", "https://replicate.com/black-forest-labs/flux-schnell", CHECKED
        ),
        "minimax/video-01": Price(
            Decimal("0.50"),
            "video",
            "https://replicate.com/minimax/video-01",
            CHECKED,
            note="one 6 s 720p clip per prediction",
        ),
        # Community models: the model page names the hardware it runs on.
        "nightmareai/real-esrgan": HARDWARE["gpu-t4"],
        "openai/whisper": HARDWARE["gpu-t4"],
        "meta/musicgen": HARDWARE["gpu-a100-large"],
    },
)
