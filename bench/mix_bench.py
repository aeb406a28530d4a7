"""local/mix on a 60 s 1280x720 video vs the same ffmpeg work run directly; peak RSS of the audio/text generators.

    .venv/bin/python -m bench.mix_bench                       # 60 s video, best of 3 rounds
    .venv/bin/python -m bench.mix_bench --seconds 20 --rounds 1

local/mix runs ffmpeg four times (or more): an audio-only pass that measures the integrated loudness
(ebur128) of the mixed sound, the encode of the sound with the measured gain behind a true-peak limiter,
a pass that decodes that AAC and measures its true peak (the sound is encoded again, with a lower ceiling,
while it overshoots -1 dBTP), then the picture's encode, the sound copied in. The fair baseline is
therefore those same commands run straight from a shell; what the generator adds on top is resolving
inputs, finding speech for the ducking envelope, probing and storing the result. A single ffmpeg command
doing comparable work (sidechaincompress ducking, one-pass dynamic loudnorm, same encoders) is timed too,
for reference.

Peak RSS is measured in a child process per generator (VmHWM of the Python process; the largest
subprocess — ffmpeg or the eSpeak worker — is reported beside it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from generators.context import GeneratorContext
from generators.local._audio import decode_mono
from generators.local._loudness import FIRST_CEILING_DB, MAX_ENCODES, measure_args, next_encode, read_r128
from generators.local.mix import AudioMix, Mixer, ducking_gain
from generators.local.music import ProceduralMusic
from generators.local.text_template import TextTemplate
from generators.local.tts import ESpeakTTS
from generators.media import AAC, BITEXACT, H264, ffmpeg_exe, run_ffmpeg
from generators.storage import LocalStore

TARGET_RATIO = 1.10
NARRATION = (
    "Every morning the lighthouse keeper climbed the spiral stairs, counted the gulls on the rocks, and wrote "
    "the weather in a small blue book. The sea was calm today, grey as pewter, and the fishing boats came home "
    "early with full nets. In the afternoon a storm gathered in the west, and by evening the lamp was the only "
    "light for miles. "
)


def _rss_mib() -> float:
    """Peak RSS of this process (VmHWM: ru_maxrss would carry over the parent's peak across exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# -- children: one generator run each, for its peak RSS ----------------------------------------------------------
async def _child_run(which: str, work: Path) -> dict:
    store = LocalStore(work / "store")
    jobs = {
        "local/tts (5000 chars)": (ESpeakTTS(), lambda: {"text": (NARRATION * 20)[:5000]}),
        "local/music (600 s)": (ProceduralMusic(), lambda: {"duration": 600, "mood": "tense"}),
        "local/mix (60 s, 720p)": (AudioMix(), lambda: json.loads((work / "mix_inputs.json").read_text())),
        "local/text-template (100k)": (
            TextTemplate(),
            lambda: {"template": "{who} walks. " * 7692, "parameters": {"who": "Ada"}},  # 99,996 characters
        ),
    }
    generator, inputs = jobs[which]
    before = _rss_mib()
    started = time.perf_counter()
    async with GeneratorContext(store) as ctx:
        result = await generator.run(inputs(), ctx)
    return {
        "seconds": time.perf_counter() - started,
        "rss_before_mib": before,
        "rss_peak_mib": _rss_mib(),
        "subprocess_peak_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
        "duration": result.outputs[next(iter(result.outputs))].get("duration"),
    }


def _measure_child(which: str, work: Path) -> dict:
    cmd = [sys.executable, "-m", "bench.mix_bench", "--child", which, "--work", str(work)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{which} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# -- the parent: inputs, the three timed variants, report ---------------------------------------------------------
async def _make_inputs(ctx: GeneratorContext, seconds: float) -> dict:
    video_path = ctx.temp_path(".mp4")
    await run_ffmpeg(
        ["-f", "lavfi", "-i", f"testsrc=size=1280x720:rate=25:duration={seconds}", *H264, *BITEXACT, str(video_path)]
    )
    video = await ctx.store_video_result(video_path)
    narration = (await ESpeakTTS().run({"text": NARRATION * 2}, ctx)).primary
    music = (await ProceduralMusic().run({"duration": seconds, "mood": "upbeat"}, ctx)).primary
    return {"video": video, "narration": narration, "music": music, "narration_offset": 3.0}


def _ffmpeg(args: list[str]) -> None:
    subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-y", "-loglevel", "error", *args], check=True)


def _direct_commands(mixer: Mixer, work: Path) -> float:
    """The generator's ffmpeg commands, run straight (same inputs, same gain track, same graphs, same retries)."""
    started = time.perf_counter()
    _ffmpeg(mixer.measure_args(work / "direct.txt"))
    target = mixer.inputs.target_lufs
    gain, ceiling = target - read_r128(work / "direct.txt").integrated, FIRST_CEILING_DB
    for attempt in range(MAX_ENCODES):
        _ffmpeg(mixer.sound_args(gain, ceiling, work / "direct.m4a"))
        _ffmpeg(measure_args(work / "direct.m4a", work / "direct-peak.txt"))
        retry = next_encode(read_r128(work / "direct-peak.txt"), ceiling, gain, target, last=attempt == MAX_ENCODES - 1)
        if retry is None:
            break
        ceiling, gain = retry
    _ffmpeg(mixer.encode_args(work / "direct.m4a", work / "direct.mp4"))
    return time.perf_counter() - started


def _single_command(inputs: dict, paths: dict, work: Path) -> float:
    """One ffmpeg command: sidechain-compressor ducking and one-pass (dynamic) loudnorm, same encoders."""
    duration = inputs["video"].duration
    samples = round(duration * 48000)
    fmt = "aresample=48000,aformat=sample_fmts=fltp:channel_layouts=stereo"
    graph = (
        f"[1:a]{fmt},adelay=delays={round(inputs['narration_offset'] * 48000)}S:all=1,asplit=2[n][key];"
        f"[2:a]{fmt},volume=-8dB[m];[m][key]sidechaincompress=threshold=0.02:ratio=8:attack=20:release=400[md];"
        f"[n][md]amix=inputs=2:duration=longest:normalize=0:dropout_transition=0,apad=whole_len={samples},"
        f"atrim=end_sample={samples},afade=t=in:d=0.5,afade=t=out:st={duration - 1}:d=1,"
        f"loudnorm=I=-16:TP=-1:LRA=11,aresample=48000[a];[0:v]format=yuv420p[v]"
    )
    started = time.perf_counter()
    _ffmpeg(
        [
            "-i",
            str(paths["video"]),
            "-i",
            str(paths["narration"]),
            "-i",
            str(paths["music"]),
            "-filter_complex",
            graph,
            "-map",
            "[v]",
            "-map",
            "[a]",
            "-t",
            str(duration),
            *H264,
            *AAC,
            "-ar",
            "48000",
            *BITEXACT,
            str(work / "single.mp4"),
        ]
    )
    return time.perf_counter() - started


async def _generator(store: LocalStore, inputs: dict) -> float:
    started = time.perf_counter()
    async with GeneratorContext(store) as ctx:
        await AudioMix().run(inputs, ctx)
    return time.perf_counter() - started


async def _bench(seconds: float, rounds: int, work: Path) -> None:
    store = LocalStore(work / "store")
    async with GeneratorContext(store) as ctx:
        print(f"making a {seconds:g} s 1280x720 test video, narration and music …")
        inputs = await _make_inputs(ctx, seconds)
        paths = {name: await ctx.resolve_artifact(inputs[name]) for name in ("video", "narration", "music")}
        mix_input = AudioMix().parse_inputs(inputs)
        speech = decode_mono(paths["narration"], 8000)
        gain = ducking_gain(
            speech,
            8000,
            offset=mix_input.narration_offset,
            duration=mix_input.output_duration(),
            depth_db=mix_input.duck_db,
        )
        gain.tofile(work / "gain.f32")
        mixer = Mixer(mix_input, paths, work / "gain.f32")
        (work / "mix_inputs.json").write_text(json.dumps(mix_input.model_dump(mode="json")))
    print(
        f"narration {inputs['narration'].duration:.1f} s from {inputs['narration_offset']:g} s, music "
        f"{inputs['music'].duration:.1f} s; best of {rounds} round(s), the three variants interleaved:"
    )
    times: dict[str, list[float]] = {"generator": [], "direct": [], "single": []}
    for _ in range(rounds):
        times["direct"].append(_direct_commands(mixer, work))
        times["generator"].append(await _generator(store, inputs))
        times["single"].append(_single_command(inputs, paths, work))
    for name, runs in times.items():
        print(f"  {name:<10} runs: {', '.join(f'{t:.2f} s' for t in runs)}")
    best = {k: min(v) for k, v in times.items()}
    print(f"  local/mix generator                          {best['generator']:7.2f} s")
    print(f"  same ffmpeg commands, run directly           {best['direct']:7.2f} s")
    print(f"  one ffmpeg command (sidechain + loudnorm)    {best['single']:7.2f} s")
    ratio = best["generator"] / best["direct"]
    verdict = "ok" if ratio <= TARGET_RATIO else f"ABOVE the {TARGET_RATIO:.2f} target"
    print(f"ratio generator / direct commands: {ratio:.3f} ({verdict})")
    print(f"ratio generator / single command:  {best['generator'] / best['single']:.3f} (reference)")
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"(load average now {load} on {os.cpu_count()} cores: other work on the machine skews single runs)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="Length of the test video (default 60).")
    parser.add_argument("--rounds", type=int, default=3, help="Rounds to take the best of (default 3).")
    parser.add_argument("--skip-rss", action="store_true", help="Skip the peak-RSS part.")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(asyncio.run(_child_run(args.child, args.work))))
        return
    work = Path(tempfile.mkdtemp(prefix="boardflow-mix-bench-"))
    asyncio.run(_bench(args.seconds, args.rounds, work))
    if args.skip_rss:
        return
    print("peak RSS per generator on its largest input (child process each):")
    for which in (
        "local/tts (5000 chars)",
        "local/music (600 s)",
        "local/mix (60 s, 720p)",
        "local/text-template (100k)",
    ):
        r = _measure_child(which, work)
        made = f", {r['duration']:.1f} s of output" if r["duration"] else ""
        print(
            f"  {which:<28} {r['seconds']:6.1f} s{made:<24} python peak {r['rss_peak_mib']:6.1f} MiB "
            f"(+{r['rss_peak_mib'] - r['rss_before_mib']:.1f} over imports), largest subprocess "
            f"{r['subprocess_peak_mib']:6.1f} MiB"
        )


if __name__ == "__main__":
    main()
