"""Synthesis building blocks for local/music: band-limited oscillators, drum voices, a streaming mixer with reverb."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

TABLE_BITS = 12
TABLE_SIZE = 1 << TABLE_BITS
F32 = np.float32


def midi_hz(note: float) -> float:
    return 440.0 * 2.0 ** ((note - 69) / 12.0)


def wavetable(harmonics: int, rolloff: float) -> np.ndarray:
    """One cycle of a band-limited wave: harmonic k at 1/k**rolloff (1 ≈ saw-bright, 2 ≈ soft and round)."""
    phase = np.arange(TABLE_SIZE) / TABLE_SIZE
    wave = sum(np.sin(2 * np.pi * k * phase) / k**rolloff for k in range(1, harmonics + 1))
    wave = (wave / np.max(np.abs(wave))).astype(F32)
    return np.append(wave, wave[:1])  # the guard sample lets `lerp` read index + 1 without a modulo


def table_lookup(freq: float, n: int, sr: int, phase: float) -> tuple[np.ndarray, np.ndarray]:
    """Table indices and interpolation fractions for `n` samples at `freq` Hz from `phase` (cycles).

    Fixed-point phase (32 fractional bits) keeps long notes exact without float64 modulo over every sample.
    """
    one = 1 << 32
    start = int((phase % 1.0) * one)
    pos = (start + int(freq / sr * one) * np.arange(n, dtype=np.int64)) & (one - 1)
    index = pos >> (32 - TABLE_BITS)
    frac = (pos & ((1 << (32 - TABLE_BITS)) - 1)).astype(F32) * F32(1.0 / (1 << (32 - TABLE_BITS)))
    return index, frac


def lerp(table: np.ndarray, index: np.ndarray, frac: np.ndarray) -> np.ndarray:
    """Linear interpolation into a wavetable padded with its first sample at the end."""
    a = table[index]
    return a + (table[index + 1] - a) * frac


def envelope(n_on: int, n_total: int, sr: int, attack: float, release: float) -> np.ndarray:
    """Raised-cosine attack, full sustain while the note is held, exponential release after it."""
    env = np.ones(n_total, dtype=F32)
    n_att = max(1, min(int(attack * sr), n_on))
    env[:n_att] = 0.5 - 0.5 * np.cos(np.pi * np.arange(n_att) / n_att)
    if n_total > n_on:
        t = np.arange(n_total - n_on) / sr
        level = env[n_on - 1]
        env[n_on:] = level * np.exp(-t * 6.9 / max(release, 1e-3))  # -60 dB after `release` seconds
    return env


def stereo(mono: np.ndarray, pan: float = 0.0) -> np.ndarray:
    """Constant-power pan: -1 left, 0 centre, +1 right."""
    angle = (pan + 1) * np.pi / 4
    return np.stack([mono * np.cos(angle) * 1.414, mono * np.sin(angle) * 1.414], axis=1).astype(F32)


def highpass(noise: np.ndarray, width: int) -> np.ndarray:
    """Crude high-pass: the signal minus its moving average over `width` samples."""
    kernel = np.ones(width, dtype=F32) / width
    return (noise - np.convolve(noise, kernel, mode="same")).astype(F32)


# -- instruments: each returns stereo float32 (frames × 2) ------------------------------------------------------
def pad(
    notes: Sequence[float],
    hold: float,
    sr: int,
    *,
    tables: tuple[np.ndarray, np.ndarray],
    attack: float,
    release: float,
    detune_cents: float,
    level: float,
    phases: np.ndarray,
    shimmer_hz: float,
) -> np.ndarray:
    """A sustained chord: per note a centre voice plus two detuned voices spread left and right."""
    n_on = int(hold * sr)
    n = n_on + int(release * sr)
    out = np.zeros((n, 2), dtype=F32)
    t = np.arange(n, dtype=F32) / sr
    mellow, bright = tables
    shade = bright - mellow
    # A slow crossfade between a soft and a bright table stands in for a moving filter: the pad breathes.
    blend = (0.5 - 0.5 * np.cos(2 * np.pi * shimmer_hz * t)).astype(F32)
    spread = 2.0 ** (detune_cents / 1200.0)
    for j, note in enumerate(notes):
        f = midi_hz(note)
        for side, ratio in ((0, 1 / spread), (1, spread)):
            index, frac = table_lookup(f * ratio, n, sr, phases[(3 * j + side) % len(phases)])
            out[:, side] += lerp(mellow, index, frac) + blend * lerp(shade, index, frac)
        index, frac = table_lookup(f, n, sr, phases[(3 * j + 2) % len(phases)])
        out += (lerp(mellow, index, frac) * F32(0.7))[:, None]
    out *= (envelope(n_on, n, sr, attack, release) * (level / len(notes)))[:, None]
    return out


def pluck(note: float, sr: int, *, level: float, decay: float, brightness: float, pan: float) -> np.ndarray:
    """A plucked/mallet tone: harmonics that die away faster the higher they are."""
    return stereo(_pluck_tone(note, sr, decay, brightness) * F32(level), pan)


@functools.lru_cache(maxsize=128)
def _pluck_tone(note: float, sr: int, decay: float, brightness: float) -> np.ndarray:
    """Unit-level pluck, cached: an arpeggio repeats the same few notes all piece long."""
    f = midi_hz(note)
    n = int(min(2.5, 5.0 / decay) * sr)
    t = np.arange(n, dtype=F32) / sr
    # Harmonic k is Im(z**k) with z = e^(i·2πft), decaying by d0·d1**(k-1): products, not a sin/exp per harmonic.
    z = np.exp(1j * 2 * np.pi * f * t).astype(np.complex64)
    d0 = np.exp(-t * decay).astype(F32)
    d1 = np.exp(-t * decay * brightness).astype(F32)
    partial, damping = z.copy(), d0.copy()
    tone = np.zeros(n, dtype=F32)
    for k in range(1, 9):
        if k * f > sr / 2.5:
            break
        tone += partial.imag * damping * F32(1 / k**1.3)
        partial *= z
        damping *= d1
    tone[: int(0.003 * sr)] *= np.linspace(0, 1, int(0.003 * sr), dtype=F32)  # no click on the attack
    tone.flags.writeable = False
    return tone


def bass(note: float, hold: float, sr: int, *, level: float) -> np.ndarray:
    """A round electric-bass-like note: sine with a little 2nd/3rd harmonic, gently saturated."""
    f = midi_hz(note)
    n_on = max(int(hold * sr), int(0.02 * sr))
    n = n_on + int(0.08 * sr)
    t = np.arange(n, dtype=F32) / sr
    tone = np.sin(2 * np.pi * f * t) + 0.25 * np.sin(4 * np.pi * f * t) + 0.1 * np.sin(6 * np.pi * f * t)
    env = envelope(n_on, n, sr, 0.008, 0.06) * (0.75 + 0.25 * np.exp(-t / 0.15))
    return stereo(np.tanh(1.5 * tone * env) / np.tanh(1.5) * level)


def kick(sr: int, level: float) -> np.ndarray:
    n = int(0.45 * sr)
    t = np.arange(n) / sr
    freq = 48 + 110 * np.exp(-t / 0.035)  # the fast pitch drop is what makes a sine sound like a drum
    body = np.sin(2 * np.pi * np.cumsum(freq) / sr) * np.exp(-t / 0.28)
    body[: int(0.002 * sr)] *= np.linspace(0, 1, int(0.002 * sr))
    return stereo(body.astype(F32) * level)


def snare(noise: np.ndarray, sr: int, level: float) -> np.ndarray:
    n = int(0.3 * sr)
    t = (np.arange(n) / sr).astype(F32)
    rattle = highpass(noise[:n], 6) * np.exp(-t / 0.11)
    tone = np.sin(2 * np.pi * 190 * t) * np.exp(-t / 0.05) * 0.6
    return stereo((rattle + tone) * level, -0.1)


def clap(noise: np.ndarray, sr: int, level: float) -> np.ndarray:
    n = int(0.35 * sr)
    t = (np.arange(n) / sr).astype(F32)
    band = highpass(noise[:n], 12)
    env = np.exp(-t / 0.12) * 0.6
    for start in (0.0, 0.011, 0.022):  # three hands a few ms apart
        env += np.where(t >= start, np.exp(-(t - start) / 0.007), 0).astype(F32)
    return stereo(band * env * level, 0.1)


def hat(noise: np.ndarray, sr: int, level: float, *, open_: bool) -> np.ndarray:
    n = int((0.45 if open_ else 0.09) * sr)
    t = (np.arange(n) / sr).astype(F32)
    tone = highpass(highpass(noise[:n], 3), 2) * np.exp(-t / (0.16 if open_ else 0.025))
    return stereo(tone * level, 0.35)


def tom(sr: int, level: float, pitch: float) -> np.ndarray:
    n = int(0.8 * sr)
    t = np.arange(n) / sr
    freq = pitch * (1 + 0.5 * np.exp(-t / 0.05))
    body = np.sin(2 * np.pi * np.cumsum(freq) / sr) * np.exp(-t / 0.35)
    return stereo(body.astype(F32) * level, -0.25)


def swell(noise: np.ndarray, sr: int, level: float) -> np.ndarray:
    """A cymbal-like wash that marks the start of a section."""
    n = min(int(2.5 * sr), len(noise))
    t = (np.arange(n) / sr).astype(F32)
    wash = highpass(noise[:n], 3) * np.exp(-t / 0.9)
    wash[: int(0.005 * sr)] *= np.linspace(0, 1, int(0.005 * sr), dtype=F32)
    return np.stack([wash, np.roll(wash, 211)], axis=1) * level  # a small offset widens it


# -- mixing ------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Event:
    """One sound at an absolute sample position; `render` makes it when the mixer reaches it."""

    start: int
    length: int  # upper bound on the rendered frames
    send: float  # how much of it goes to the reverb
    render: Callable[[], np.ndarray]


def reverb_ir(sr: int, rt60: float, rng: np.random.Generator) -> np.ndarray:
    """A stereo impulse response: decorrelated noise decaying 60 dB in `rt60` s, darker as it fades."""
    n = int(rt60 * sr)
    t = np.arange(n) / sr
    ir = rng.standard_normal((n, 2)) * np.exp(-t * 6.9 / rt60)[:, None]
    ir = (ir + np.roll(ir, 1, axis=0) + np.roll(ir, 2, axis=0)) / 3  # soften the highs
    ir[: int(0.012 * sr)] = 0  # pre-delay keeps the dry attack clear
    return (ir / np.sqrt(np.sum(ir**2) / 2)).astype(F32)


class Convolver:
    """Streaming stereo FFT convolution (overlap-add). Blocks of `block` frames; the FFT is 4× the IR, which
    keeps the per-sample cost near its minimum for impulse responses of a few seconds."""

    def __init__(self, ir: np.ndarray) -> None:
        self.size = 1 << int(np.ceil(np.log2(4 * len(ir))))
        self.block = self.size - len(ir) + 1
        self.spectrum = np.fft.rfft(np.ascontiguousarray(ir.T), self.size)
        self.tail = np.zeros((2, self.size), dtype=F32)

    def process(self, x: np.ndarray) -> np.ndarray:
        n = len(x)
        y = np.fft.irfft(np.fft.rfft(np.ascontiguousarray(x.T), self.size) * self.spectrum, self.size)
        y = y.astype(F32) + self.tail
        self.tail = np.zeros_like(self.tail)
        self.tail[:, : self.size - n] = y[:, n:]
        return y[:, :n].T


def mix_stream(
    events: list[Event], total: int, *, ir: np.ndarray | None, wet: float, chunk: int = 1 << 16
) -> Iterator[np.ndarray]:
    """Render `events` chunk by chunk (memory bounded by the longest event, not the piece); yields stereo.

    With a reverb the chunk is the convolver's block size.
    """
    events = sorted(events, key=lambda e: e.start)
    reverb = Convolver(ir) if ir is not None else None
    chunk = reverb.block if reverb is not None else chunk
    width = chunk + max((e.length for e in events), default=0)
    dry = np.zeros((width, 2), dtype=F32)
    send = np.zeros((width, 2), dtype=F32)
    i = 0
    for start in range(0, total, chunk):
        n = min(chunk, total - start)
        while i < len(events) and events[i].start < start + n:
            event = events[i]
            sound = event.render()[: event.length]
            at = event.start - start
            dry[at : at + len(sound)] += sound
            if event.send:
                send[at : at + len(sound)] += sound * event.send
            i += 1
        out = dry[:n].copy()
        if reverb is not None:
            out += reverb.process(send[:n]) * wet
        yield out
        for buf in (dry, send):
            buf[:-n] = buf[n:]
            buf[-n:] = 0
