"""The true-peak loop of local/mix and local/concat: when it encodes again, and that it never ships an overshoot."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from _media_checks import LOUD

from generators.errors import MediaProcessingError
from generators.local._loudness import (
    FIRST_CEILING_DB,
    MAX_ENCODES,
    TRUE_PEAK_AIM_DB,
    Loudness,
    encode_within_true_peak,
    next_encode,
)
from generators.media import AAC, run_ffmpeg


@pytest.mark.parametrize(
    ("got", "target", "expected"),
    [
        (Loudness(-16.2, -1.3), -16.0, None),  # under the limit, near the target: done
        (Loudness(-16.2, -1.3), None, None),
        (Loudness(-16.2, -0.8), -16.0, (FIRST_CEILING_DB - 0.3 - 0.1, 0.0)),  # ceiling lowered by the overshoot
        (Loudness(-16.8, -1.3), -16.0, (FIRST_CEILING_DB, 0.8)),  # too quiet: gain corrected
        (Loudness(-20.0, -1.3), None, None),  # no target: loudness is left as it is
        (Loudness(-70.0, -math.inf), -16.0, None),  # silence: nothing to correct
    ],
)
def test_next_encode_lowers_the_ceiling_by_the_overshoot_and_corrects_the_loudness(got, target, expected):
    retry = next_encode(got, FIRST_CEILING_DB, 0.0, target, last=False)
    assert retry == (pytest.approx(expected) if expected else None)


def test_the_last_encode_is_kept_a_little_off_target_but_never_over_the_peak_limit():
    assert next_encode(Loudness(-16.8, -1.3), FIRST_CEILING_DB, 0.0, -16.0, last=True) is None
    assert next_encode(Loudness(-16.0, TRUE_PEAK_AIM_DB + 0.01), FIRST_CEILING_DB, 0.0, -16.0, last=True)


async def test_sound_that_never_comes_under_the_limit_fails_clearly_instead_of_shipping(ctx):
    ceilings: list[float] = []

    async def stubborn(gain_db: float, ceiling_db: float, out: Path) -> None:  # ignores what it is asked
        ceilings.append(ceiling_db)
        await run_ffmpeg(["-f", "lavfi", "-i", LOUD.format(seconds=1.0), *AAC, str(out)])

    with pytest.raises(MediaProcessingError, match="still peaks at .* dBTP after 5 encodes") as caught:
        await encode_within_true_peak(stubborn, ctx, suffix=".m4a")
    assert "Lower the loudness target" in str(caught.value)
    assert len(ceilings) == MAX_ENCODES + 1 and ceilings == sorted(ceilings, reverse=True), ceilings
