"""local/tts: speech from text with eSpeak NG, driven through its C library with ctypes."""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import difflib
import sys
import threading
import time
from dataclasses import dataclass
from decimal import Decimal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..artifacts import AudioArtifact
from ..base import Availability, BaseGenerator
from ..context import GeneratorContext
from ..errors import ConfigurationError, InputError, MediaProcessingError
from ..media import child_setup, reap
from ._audio import AudioFormat, encode_audio, write_wav

# Constants from espeak-ng's speak_lib.h.
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_DONT_EXIT = 0x8000

# Synthesis runs in a fresh interpreter per utterance. In one process, eSpeak NG keeps static synthesis state
# (pitch-flutter index, glottal wave phase) that neither espeak_Terminate nor espeak_ng_SetRandSeed resets, so
# the same text comes out a few samples different every call; a new process always starts from the same state,
# which makes the bytes — and so the cache — reproducible, and lets utterances run in parallel without a lock.
# The script needs nothing but ctypes (-I: no site-packages, ~30 ms to start).
_SYNTH_SCRIPT = r"""
import ctypes, sys
library, data, voice, rate, pitch = sys.argv[1:6]
lib = ctypes.CDLL(library)
lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
lib.espeak_Synth.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
                             ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
if lib.espeak_Initialize(2, 0, data.encode() or None, 0x8000) <= 0:  # synchronous output, don't exit on error
    sys.exit("eSpeak NG failed to initialise")
if lib.espeak_SetVoiceByName(voice.encode()) != 0:
    sys.exit(f"eSpeak NG could not load voice {voice!r}")
lib.espeak_SetParameter(1, int(rate), 0)  # espeakRATE, words per minute
lib.espeak_SetParameter(3, int(pitch), 0)  # espeakPITCH, 0-99
out = sys.stdout.buffer

@ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)
def collect(wav, count, events):
    if count > 0:
        out.write(ctypes.string_at(wav, 2 * count))
    return 0

lib.espeak_SetSynthCallback(collect)
text = sys.stdin.buffer.read()
# POS_CHARACTER = 1; espeakCHARS_UTF8 | espeakENDPAUSE = 0x1001
status = lib.espeak_Synth(text, len(text) + 1, 0, 1, 0, 0x1001, None, None)
out.flush()
sys.exit(f"espeak_Synth failed with code {status}" if status else 0)
"""


class _Voice(ctypes.Structure):
    """espeak_VOICE. `languages` is a run of (priority byte, NUL-terminated name) pairs, so it stays a raw pointer."""

    _fields_ = [
        ("name", ctypes.c_char_p),
        ("languages", ctypes.c_void_p),
        ("identifier", ctypes.c_char_p),
        ("gender", ctypes.c_ubyte),
        ("age", ctypes.c_ubyte),
        ("variant", ctypes.c_ubyte),
        ("xx1", ctypes.c_ubyte),
        ("score", ctypes.c_int),
        ("spare", ctypes.c_void_p),
    ]


class _VoiceSpec(ctypes.Structure):
    """espeak_VOICE used as a filter for espeak_ListVoices (same layout, `languages` as a plain string)."""

    _fields_ = [
        ("name", ctypes.c_char_p),
        ("languages", ctypes.c_char_p),
        ("identifier", ctypes.c_char_p),
        ("gender", ctypes.c_ubyte),
        ("age", ctypes.c_ubyte),
        ("variant", ctypes.c_ubyte),
        ("xx1", ctypes.c_ubyte),
        ("score", ctypes.c_int),
        ("spare", ctypes.c_void_p),
    ]


@dataclass(frozen=True)
class Voices:
    """What the installed library can speak, keyed by lower-case spelling."""

    identifiers: dict[str, str]  # language code ("en-gb") or voice name ("english (america)") → voice file id
    variants: dict[str, str]  # "f3", "klatt", "alicia" → the variant's file name
    codes: tuple[str, ...]  # language codes, sorted, for messages


class ESpeak:
    """The installed eSpeak NG: library path, data, sample rate and voices, read once in-process under a lock."""

    _instance: ESpeak | None = None
    _lock = threading.Lock()

    def __init__(self, library: str, data_path: str | None) -> None:
        self.library = library
        self.data_path = data_path
        self._lib = lib = ctypes.CDLL(library)
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_ListVoices.argtypes = [ctypes.c_void_p]
        lib.espeak_ListVoices.restype = ctypes.POINTER(ctypes.POINTER(_Voice))
        path = data_path.encode() if data_path else None
        self.sample_rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, path, _INITIALIZE_DONT_EXIT)
        if self.sample_rate <= 0:
            raise ConfigurationError(
                f"eSpeak NG failed to initialise from {library} (data: {data_path}).",
                hint="Reinstall the wheel: pip install --force-reinstall espeakng-loader",
            )
        self.voices = self._list_voices()

    @classmethod
    def get(cls) -> ESpeak:
        """The espeakng-loader wheel's library, else a system libespeak-ng; loaded on first use."""
        with cls._lock:
            if cls._instance is None:
                cls._instance = cls(*_locate_library())
            return cls._instance

    def _list_voices(self) -> Voices:
        best: dict[str, tuple[int, str]] = {}  # code or name → (priority, identifier); lower priority number wins
        codes: set[str] = set()
        for voice in self._voice_list(None):
            ident = voice.identifier.decode()
            if ident.startswith("mb/"):
                continue  # MBROLA voices need separately installed databases
            best.setdefault(voice.name.decode().lower(), (0, ident))
            for priority, code in _language_codes(voice.languages):
                codes.add(code)
                if code.lower() not in best or priority < best[code.lower()][0]:
                    best[code.lower()] = (priority, ident)
        spec = _VoiceSpec(languages=b"variant")
        variants = {}
        for voice in self._voice_list(ctypes.byref(spec)):
            name = voice.identifier.decode().removeprefix("!v/")
            variants[name.lower()] = name
        return Voices({key: ident for key, (_, ident) in best.items()}, variants, tuple(sorted(codes)))

    def _voice_list(self, spec) -> list[_Voice]:
        found = []
        array = self._lib.espeak_ListVoices(spec)
        i = 0
        while array[i]:
            found.append(array[i].contents)
            i += 1
        return found

    async def synthesize(self, text: str, *, voice: str, variant: str | None, rate: int, pitch: int) -> np.ndarray:
        """Speak `text` in a fresh process; mono int16 samples at `self.sample_rate`."""
        ident = self.voices.identifiers[voice.lower()]
        spec = f"{ident}+{self.voices.variants[variant.lower()]}" if variant else ident
        args = [self.library, self.data_path or "", spec, str(rate), str(pitch)]
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-I", "-c", _SYNTH_SCRIPT, *args,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            preexec_fn=child_setup(),  # dies with us, even when we are SIGKILLed
        )  # fmt: skip
        try:
            pcm, err = await proc.communicate(text.encode("utf-8"))
        except BaseException:  # cancelled: do not leave the worker speaking to nobody
            await reap(proc)
            raise
        if proc.returncode != 0:
            raise MediaProcessingError(
                f"eSpeak NG failed (exit code {proc.returncode}).",
                command=[sys.executable, "-I", "-c", "<eSpeak NG worker script>", *args],
                stderr_tail=err.decode(errors="replace").strip()[-2000:],
            )
        return np.frombuffer(pcm, dtype="<i2")


def _language_codes(pointer: int | None) -> list[tuple[int, str]]:
    codes = []
    while pointer and (priority := ctypes.c_ubyte.from_address(pointer).value) != 0:  # priority 0 ends the list
        code = ctypes.string_at(pointer + 1)
        codes.append((priority, code.decode()))
        pointer += len(code) + 2
    return codes


def _locate_library() -> tuple[str, str | None]:
    try:
        import espeakng_loader
    except ImportError:
        system = ctypes.util.find_library("espeak-ng")
        if system is None:
            raise ConfigurationError(
                "eSpeak NG is not installed.", hint="pip install espeakng-loader (or apt install libespeak-ng1)."
            ) from None
        return system, None
    return espeakng_loader.get_library_path(), espeakng_loader.get_data_path()


class TTSInput(BaseModel):
    """Inputs of local/tts."""

    model_config = ConfigDict(extra="forbid")

    text: str = Field(description="What to say, plain text (1–5000 characters).", min_length=1, max_length=5000)
    voice: str = Field(
        default="en-us",
        description="eSpeak NG language code (en, en-us, en-gb, de, fr, es, …) "
        'or voice name ("English (America)"), any case.',
    )
    variant: str | None = Field(
        default=None,
        description="Optional voice variant: m1–m7 and f1–f5 for male and "
        "female timbres, klatt, whisper, and others eSpeak ships.",
    )
    rate: int = Field(default=165, ge=80, le=450, description="Speaking rate, words per minute.")
    pitch: int = Field(default=50, ge=0, le=99, description="Base pitch, 0 (low) to 99 (high).")
    format: AudioFormat = Field(default=AudioFormat.WAV, description="Output file format.")

    @field_validator("text")
    @classmethod
    def _text_has_words(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("text is empty or only whitespace; give the words to speak")
        return value

    @field_validator("voice")
    @classmethod
    def _known_voice(cls, value: str) -> str:
        voices = ESpeak.get().voices
        key = value.strip().lower()
        if key not in voices.identifiers:
            close = difflib.get_close_matches(value.strip().lower(), voices.codes, n=4, cutoff=0.5)
            examples = [c for c in ("en", "en-us", "en-gb", "de", "fr", "es", "it", "pt-br", "ja") if c in voices.codes]
            raise ValueError(
                f"unknown voice {value!r}; use a language code such as "
                f"{', '.join(dict.fromkeys(close + examples))} ({len(voices.codes)} in all; "
                f"`python -m generators.local.tts` lists them)"
            )
        return key

    @field_validator("variant")
    @classmethod
    def _known_variant(cls, value: str | None) -> str | None:
        if value is None:
            return None
        variants = ESpeak.get().voices.variants
        canonical = variants.get(value.strip().lower())
        if canonical is None:
            close = difflib.get_close_matches(value.strip().lower(), variants, n=4, cutoff=0.5)
            examples = ["m1", "m3", "f1", "f3", "klatt", "whisper"]
            raise ValueError(
                f"unknown voice variant {value!r}; try {', '.join(dict.fromkeys(close + examples))} "
                f"({len(variants)} in all; `python -m generators.local.tts` lists them)"
            )
        return canonical


class TTSOutput(BaseModel):
    audio: AudioArtifact


class ESpeakTTS(BaseGenerator):
    name = "local/tts"
    artifact_type = "audio"
    description = "Speech from text with eSpeak NG (100+ languages, voice variants, rate and pitch); offline."

    def get_input_schema(self) -> type[TTSInput]:
        return TTSInput

    def get_output_schema(self) -> type[TTSOutput]:
        return TTSOutput

    def availability(self) -> Availability:
        try:
            ESpeak.get()
        except (ConfigurationError, OSError) as exc:
            return Availability(False, f"eSpeak NG cannot be loaded: {exc}", "pip install espeakng-loader")
        return Availability(True)

    async def estimate_cost(self, inputs: TTSInput) -> Decimal:
        return Decimal("0")

    async def generate(self, inputs: TTSInput, context: GeneratorContext) -> TTSOutput:
        started = time.perf_counter()
        engine = ESpeak.get()
        context.publish_progress(0.0, "synthesising speech")
        pcm = await engine.synthesize(
            inputs.text, voice=inputs.voice, variant=inputs.variant, rate=inputs.rate, pitch=inputs.pitch
        )
        if not np.any(pcm):
            raise InputError(
                f"eSpeak NG produced no sound for the text {inputs.text[:60]!r}.",
                hint="Give text with pronounceable words in the chosen language.",
            )
        # Peak-normalise to -1 dBFS so every voice and variant comes out at a comparable, usable level.
        samples = pcm.astype(np.float32)
        samples *= 0.891 / max(-int(pcm.min()), int(pcm.max()))
        wav = write_wav(context.temp_path(".wav"), samples, engine.sample_rate)
        duration = len(samples) / engine.sample_rate
        context.publish_progress(0.5, "encoding")
        path = await encode_audio(wav, inputs.format, context, duration=duration, what="speech encode")
        artifact = await context.store_audio_result(path, format=inputs.format.value)
        context.record_compute_seconds(time.perf_counter() - started)
        context.publish_progress(1.0, "done")
        return TTSOutput(audio=artifact)


if __name__ == "__main__":  # `python -m generators.local.tts` lists what the installed eSpeak NG can speak
    _voices = ESpeak.get().voices
    print("voices (language codes):", ", ".join(_voices.codes))
    print("variants:", ", ".join(sorted(_voices.variants.values(), key=str.lower)))
