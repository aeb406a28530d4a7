"""Ken Burns bench: the generator vs the same ffmpeg filter graph run directly, and the generator's peak memory.

Run: .venv/bin/python -m bench.ken_burns_bench [--rounds N]

1. Wall time of `local/ken-burns` (1920x1080, 6 s at 30 fps, zoom-in) inside a GeneratorContext on a temp
   LocalStore, as a ratio of running the very same ffmpeg command from a plain subprocess. Rounds
   alternate the two, swapping the order every round; the ratios of the fastest runs and of the medians
   are printed, because these machines are shared and noisy, with the CPU seconds (ours + ffmpeg's)
   beside them, which noise disturbs less. Target ≤ 1.10.
2. Peak RSS of a fresh Python process running the generator on its largest supported frames
   (1920x1080 and 1080x1920 stills rendered at their own size, 60 fps), and of the ffmpeg it starts.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from generators.artifacts import ImageArtifact
from generators.context import GeneratorContext
from generators.local.ken_burns import KenBurnsGenerator, ffmpeg_args, plan_ken_burns
from generators.local.procedural_image import ProceduralImageGenerator
from generators.media import ffmpeg_exe
from generators.storage import LocalStore

TARGET_RATIO = 1.10
TIMED = {"resolution": "1920x1080", "duration": 6.0, "fps": 30, "motion": "zoom-in"}


async def make_still(store: LocalStore, size: str) -> ImageArtifact:
    async with GeneratorContext(store) as ctx:
        result = await ProceduralImageGenerator().run(
            {"prompt": "golden hills under a violet dusk sky", "size": size, "caption": "Ken Burns bench"}, ctx
        )
    return ImageArtifact.model_validate(result.primary.model_dump())


def cpu_seconds() -> float:
    """User + system CPU of this process and of every child it has waited for (ffmpeg)."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def run_direct(store: LocalStore, image: ImageArtifact, out: Path) -> tuple[float, float]:
    """The generator's own ffmpeg command, started as one subprocess, as from a shell."""
    gen = KenBurnsGenerator()
    inputs = gen.parse_inputs({"image": image, **TIMED})
    source = store.local_path(store.key_for(image.storage_url))
    plan = plan_ken_burns(inputs, image.width, image.height)
    cmd = [
        ffmpeg_exe(),
        "-hide_banner",
        "-nostdin",
        "-y",
        "-loglevel",
        "error",
        *ffmpeg_args(plan, source, out),
    ]
    started, cpu = time.perf_counter(), cpu_seconds()
    subprocess.run(cmd, check=True)
    return time.perf_counter() - started, cpu_seconds() - cpu


async def run_generator(store: LocalStore, image: ImageArtifact, inputs: dict) -> tuple[float, float, float]:
    """Wall and CPU seconds of one generator run, and the wall seconds of the ffmpeg inside it."""
    started, cpu = time.perf_counter(), cpu_seconds()
    async with GeneratorContext(store, run_id="bench") as ctx:
        result = await KenBurnsGenerator().run({"image": image, **inputs}, ctx)
    return time.perf_counter() - started, cpu_seconds() - cpu, result.compute_seconds


def measure_rss(store_root: Path, image: ImageArtifact) -> dict:
    """Run the generator once in a fresh interpreter; return its peak RSS and its ffmpeg's, in MiB."""
    inputs = {"resolution": f"{image.width}x{image.height}", "duration": 2.0, "fps": 60, "motion": "pan-right"}
    proc = subprocess.run(
        [sys.executable, "-m", "bench.ken_burns_bench", "--rss-child", str(store_root),
         image.model_dump_json(), json.dumps(inputs)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _vm_hwm_mib() -> float:
    """This process's peak RSS. Not ru_maxrss: Linux carries that over from the parent across fork + exec."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # not Linux: the best there is


def rss_child(store_root: str, image_json: str, inputs_json: str) -> None:
    before = _vm_hwm_mib()  # after imports: the floor of any process that runs a generator
    image = ImageArtifact.model_validate_json(image_json)
    asyncio.run(run_generator(LocalStore(Path(store_root)), image, json.loads(inputs_json)))
    print(json.dumps({
        "python_after_imports_mib": round(before, 1),
        "python_peak_mib": round(_vm_hwm_mib(), 1),
        # ffmpeg's own peak (it is far above what it could inherit from this small process at fork)
        "ffmpeg_peak_mib": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1),
    }))  # fmt: skip


async def main(rounds: int) -> None:
    with tempfile.TemporaryDirectory(prefix="kb-bench-") as tmp:
        store = LocalStore(Path(tmp) / "store")
        landscape = await make_still(store, "1920x1080")
        portrait = await make_still(store, "1080x1920")
        direct, generator = [], []
        await run_generator(store, landscape, TIMED)  # warm-up: imports, page cache, first-run costs
        for i in range(rounds):
            # Swap the order every round, so a load that rises or falls over time favours neither side.
            if i % 2:
                generator.append(await run_generator(store, landscape, TIMED))
            direct.append(run_direct(store, landscape, Path(tmp) / f"direct-{i}.mp4"))
            if not i % 2:
                generator.append(await run_generator(store, landscape, TIMED))
            print(
                f"round {i + 1}: direct {direct[-1][0]:.2f} s wall / {direct[-1][1]:.2f} s CPU, "
                f"generator {generator[-1][0]:.2f} s wall / {generator[-1][1]:.2f} s CPU",
                flush=True,
            )
        print(f"\nKen Burns 1920x1080, 6 s @ 30 fps, {rounds} rounds: generator / ffmpeg command alone")
        for label, pick in (("fastest", min), ("median", statistics.median)):
            d_wall, g_wall = pick(w for w, _ in direct), pick(w for w, _, _ in generator)
            d_cpu, g_cpu = pick(c for _, c in direct), pick(c for _, c, _ in generator)
            verdict = "OK" if g_wall / d_wall <= TARGET_RATIO else "OVER TARGET"
            print(
                f"  {label:8} wall {g_wall:6.2f} / {d_wall:6.2f} s = {g_wall / d_wall:.3f} "
                f"(target ≤ {TARGET_RATIO}: {verdict});  CPU {g_cpu:6.2f} / {d_cpu:6.2f} s = {g_cpu / d_cpu:.3f}"
            )
        inside = statistics.median(w / f for w, _, f in generator)
        print(
            f"  in-run   wall of the whole generator / wall of its own ffmpeg = {inside:.3f} (median; "
            "the same ffmpeg run on both sides, so load cannot tilt it)"
        )
        print("\nPeak RSS, generator in a fresh process, 2 s @ 60 fps pan at the still's own size")
        for name, image in (("1920x1080", landscape), ("1080x1920", portrait)):
            rss = measure_rss(store.root, image)
            print(
                f"  {name}: python {rss['python_peak_mib']} MiB (of which {rss['python_after_imports_mib']} MiB "
                f"after imports), ffmpeg {rss['ffmpeg_peak_mib']} MiB"
            )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--rss-child", nargs=3, metavar=("STORE", "IMAGE_JSON", "INPUTS_JSON"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rss_child:
        rss_child(*args.rss_child)
    else:
        asyncio.run(main(args.rounds))
