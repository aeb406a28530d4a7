"""Arrangement for local/music: what each mood means in chords, bass, arpeggio and drums, laid out as events."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from . import _synth as syn

KEYS = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
SCALES = {"major": (0, 2, 4, 5, 7, 9, 11), "minor": (0, 2, 3, 5, 7, 8, 10)}


class Mood(StrEnum):
    CALM = "calm"
    UPBEAT = "upbeat"
    TENSE = "tense"
    DREAMY = "dreamy"
    EPIC = "epic"


@dataclass(frozen=True)
class Style:
    """What a mood means in notes and sounds. Steps are 16th notes within a 4/4 bar (0–15)."""

    tempo: int
    progressions: tuple[tuple[int, ...], ...]  # scale degrees, 0 = tonic; the seed picks one
    bars_per_chord: int
    chord_size: int  # 3 triads, 4 sevenths
    pad: dict  # attack, release, level, rolloff, detune_cents, shimmer_hz
    bass: tuple[tuple[int, int, int], ...]  # (step, length in steps, semitones above the chord root)
    kick: tuple[int, ...] = ()
    snare: tuple[int, ...] = ()
    clap: tuple[int, ...] = ()
    hats: tuple[int, ...] = ()
    open_hats: tuple[int, ...] = ()
    toms: tuple[int, ...] = ()
    arp: tuple[int, ...] = ()  # steps where the arpeggio plays
    arp_decay: float = 6.0
    drums_level: float = 1.0
    raise_fifth_chord: bool = False  # harmonic minor: a major V for a stronger pull home
    drone: bool = False
    swells: bool = False
    reverb: float = 0.25
    rt60: float = 2.0


_EIGHTHS = tuple(range(0, 16, 2))
STYLES = {
    Mood.CALM: Style(
        72,
        ((0, 4, 5, 3), (0, 3, 0, 4), (0, 5, 3, 4)),
        1,
        3,
        dict(attack=0.9, release=1.6, level=0.30, rolloff=2.0, detune_cents=6, shimmer_hz=0.07),
        ((0, 8, 0), (8, 8, 7)),
        kick=(0,),
        hats=(4, 12),
        arp=(0, 6, 8, 12),
        arp_decay=3.0,
        drums_level=0.55,
        reverb=0.35,
        rt60=2.5,
    ),
    Mood.UPBEAT: Style(
        118,
        ((0, 4, 5, 3), (5, 3, 0, 4), (0, 3, 4, 3)),
        1,
        3,
        dict(attack=0.04, release=0.35, level=0.22, rolloff=1.1, detune_cents=10, shimmer_hz=0.25),
        tuple((s, 2, 12 if s % 4 else 0) for s in _EIGHTHS),
        kick=(0, 4, 8, 12),
        clap=(4, 12),
        hats=(1, 3, 5, 7, 9, 11, 13, 15),
        open_hats=(2, 6, 10, 14),
        arp=(0, 2, 3, 6, 8, 10, 11, 14),
        arp_decay=9.0,
        reverb=0.18,
        rt60=1.4,
    ),
    Mood.TENSE: Style(
        96,
        ((0, 0, 5, 4), (0, 1, 0, 4), (0, 5, 0, 1)),
        1,
        3,
        dict(attack=0.5, release=1.0, level=0.24, rolloff=1.5, detune_cents=14, shimmer_hz=0.13),
        tuple((s, 1, 0) for s in range(16)),
        kick=(0, 6, 10),
        hats=tuple(range(16)),
        toms=(14,),
        arp=(3, 11),
        arp_decay=2.5,
        raise_fifth_chord=True,
        drone=True,
        reverb=0.3,
        rt60=2.2,
    ),
    Mood.DREAMY: Style(
        80,
        ((0, 2, 5, 3), (3, 4, 2, 5), (0, 3, 5, 4)),
        2,
        4,
        dict(attack=1.6, release=2.5, level=0.30, rolloff=1.4, detune_cents=12, shimmer_hz=0.1),
        ((0, 16, 0),),
        hats=(2, 6, 10, 14),
        arp=(0, 3, 6, 8, 11, 14),
        arp_decay=2.2,
        drums_level=0.45,
        reverb=0.5,
        rt60=3.5,
    ),
    Mood.EPIC: Style(
        100,
        ((5, 3, 0, 4), (0, 5, 3, 4), (0, 5, 2, 4)),
        1,
        3,
        dict(attack=0.35, release=1.2, level=0.30, rolloff=1.05, detune_cents=9, shimmer_hz=0.2),
        tuple((s, 2, 7 if s == 14 else 0) for s in _EIGHTHS),
        kick=(0, 8),
        snare=(4, 12),
        toms=(6, 10, 14),
        arp=_EIGHTHS,
        arp_decay=5.0,
        raise_fifth_chord=True,
        swells=True,
        reverb=0.35,
        rt60=2.8,
    ),
}


def chord_notes(root_midi: int, scale: tuple[int, ...], degree: int, size: int, raise_fifth: bool) -> list[int]:
    """Stack thirds on `degree` of the scale; optionally make the chord on degree 4 major (harmonic minor)."""
    notes = [root_midi + scale[(degree + 2 * i) % 7] + 12 * ((degree + 2 * i) // 7) for i in range(size)]
    if raise_fifth and degree == 4 and scale == SCALES["minor"]:
        notes[1] += 1
    return notes


@dataclass(frozen=True)
class Piece:
    """What to arrange: the musical choices of one request."""

    duration: float
    mood: Mood
    tonic: int  # pitch class, 0 = C
    scale: str  # "major" | "minor"
    tempo: int | None  # None: the mood's own
    seed: int
    sample_rate: int


def arrange(piece: Piece) -> tuple[list[syn.Event], np.ndarray]:
    """Every sound of the piece as events at sample positions, plus the reverb's impulse response."""
    style = STYLES[piece.mood]
    sr = piece.sample_rate
    rng = np.random.default_rng(piece.seed)
    step = 60.0 / (piece.tempo or style.tempo) / 4
    bar = 16 * step
    total = round(piece.duration * sr)
    n_bars = math.ceil(piece.duration / bar)
    scale = SCALES[piece.scale]
    tonic = piece.tonic
    progression = style.progressions[rng.integers(len(style.progressions))]
    noise = rng.standard_normal(3 * sr).astype(np.float32)
    tables = (syn.wavetable(12, style.pad["rolloff"] + 0.6), syn.wavetable(16, style.pad["rolloff"]))
    phases = rng.random(16)
    # Two arpeggio motifs (indices into the chord, above the octave when ≥ chord size), phrased A A B A.
    motifs = [rng.integers(0, style.chord_size + 2, len(style.arp)) for _ in range(2)]
    events: list[syn.Event] = []

    def add(at: float, sound, length: float, send: float) -> None:
        start = round(at * sr)
        if start < total:
            events.append(syn.Event(start, int(length * sr) + 1, send, sound))

    def velocity() -> float:
        return float(rng.uniform(0.85, 1.0))

    def noise_at() -> np.ndarray:
        return noise[int(rng.integers(0, sr)) :]

    intro = 2 if n_bars >= 6 else 0
    for b in range(n_bars):
        t0 = b * bar
        degree = progression[(b // style.bars_per_chord) % len(progression)]
        chord = chord_notes(48 + tonic, scale, degree, style.chord_size, style.raise_fifth_chord)
        # Close voicing inside one octave window gives smooth voice leading from chord to chord.
        voiced = sorted(55 + (n - 55) % 12 for n in chord) + [43 + (chord[0] - 43) % 12]
        if b % style.bars_per_chord == 0:
            hold = bar * style.bars_per_chord
            sound = functools.partial(
                syn.pad,
                voiced,
                hold,
                sr,
                tables=tables,
                attack=style.pad["attack"],
                release=style.pad["release"],
                detune_cents=style.pad["detune_cents"],
                level=style.pad["level"],
                phases=phases,
                shimmer_hz=style.pad["shimmer_hz"],
            )
            add(t0, sound, hold + style.pad["release"], 0.6)
        if style.drone and b % 4 == 0:
            drone = functools.partial(
                syn.pad,
                [36 + tonic, 43 + tonic],
                4 * bar,
                sr,
                tables=tables,
                attack=2.0,
                release=2.0,
                detune_cents=4,
                level=0.22,
                phases=phases,
                shimmer_hz=0.5,
            )
            add(t0, drone, 4 * bar + 2.0, 0.3)
        breakdown = n_bars > 16 and b % 16 in (12, 13)
        if b >= min(intro, 1) and not breakdown:
            bass_root = 36 + (chord[0] - 36) % 12
            for s, length, interval in style.bass:
                sound = functools.partial(
                    syn.bass, bass_root + interval, length * step * 0.9, sr, level=0.2 * velocity()
                )
                add(t0 + s * step, sound, length * step + 0.1, 0.0)
        if b >= intro:
            motif = motifs[1] if b % 4 == 2 else motifs[0]
            ordered = sorted(chord)
            for s, idx in zip(style.arp, motif, strict=True):
                note = ordered[idx % len(ordered)] + 12 + 12 * (idx // len(ordered))
                sound = functools.partial(
                    syn.pluck,
                    note,
                    sr,
                    level=0.18 * velocity(),
                    decay=style.arp_decay,
                    brightness=0.5,
                    pan=float(rng.uniform(-0.5, 0.5)),
                )
                add(t0 + s * step, sound, 2.6, 0.5)
        if b < intro or breakdown:
            continue
        _drums(add, style, t0, step, b, velocity, noise_at, sr)
    return events, syn.reverb_ir(sr, style.rt60, rng)


def _drums(add, style: Style, t0: float, step: float, bar_index: int, velocity, noise_at, sr: int) -> None:
    level = style.drums_level
    fill = bar_index % 8 == 7 and (style.snare or style.clap)
    for s in style.kick:
        add(t0 + s * step, functools.partial(syn.kick, sr, 0.6 * level * velocity()), 0.5, 0.05)
    for s in style.snare + ((13, 14, 15) if fill and style.snare else ()):
        add(t0 + s * step, functools.partial(syn.snare, noise_at(), sr, 0.12 * level * velocity()), 0.35, 0.35)
    for s in style.clap + ((14, 15) if fill and style.clap else ()):
        add(t0 + s * step, functools.partial(syn.clap, noise_at(), sr, 0.1 * level * velocity()), 0.4, 0.3)
    for s in style.hats:
        accent = 1.0 if s % 2 == 0 else 0.6
        add(
            t0 + s * step,
            functools.partial(syn.hat, noise_at(), sr, 0.09 * level * accent * velocity(), open_=False),
            0.1,
            0.1,
        )
    for s in style.open_hats:
        add(t0 + s * step, functools.partial(syn.hat, noise_at(), sr, 0.07 * level * velocity(), open_=True), 0.5, 0.15)
    for s in style.toms:
        pitch = 70.0 if s == 14 else 95.0
        add(t0 + s * step, functools.partial(syn.tom, sr, 0.3 * level * velocity(), pitch), 0.8, 0.3)
    if style.swells and bar_index % 4 == 0:
        add(t0, functools.partial(syn.swell, noise_at(), sr, 0.08 * level), 2.5, 0.5)
