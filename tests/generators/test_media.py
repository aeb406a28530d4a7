"""Probing: real files made by ffmpeg are described as ffmpeg itself describes them; bad files are refused."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from generators.errors import ArtifactDecodeError, MediaProcessingError
from generators.media import ffmpeg_exe, probe, run_ffmpeg

VIDEO = "testsrc=size=80x48:rate={rate}:duration={seconds}"
TONE = "sine=frequency=440:sample_rate={hz}:duration={seconds}"

# name -> (kind, ffmpeg arguments after the binary; the output file name is appended)
SAMPLES: dict[str, tuple[str, list[str]]] = {
    "png": ("image", ["-f", "lavfi", "-i", VIDEO.format(rate=10, seconds=1), "-frames:v", "1"]),
    "jpg": ("image", ["-f", "lavfi", "-i", VIDEO.format(rate=10, seconds=1), "-frames:v", "1"]),
    "webp": ("image", ["-f", "lavfi", "-i", VIDEO.format(rate=10, seconds=1), "-frames:v", "1", "-c:v", "libwebp"]),
    "mp4": (
        "video",
        [
            "-f",
            "lavfi",
            "-i",
            VIDEO.format(rate=10, seconds=1),
            "-f",
            "lavfi",
            "-i",
            TONE.format(hz=44100, seconds=1),
            "-ac",
            "2",
            "-c:v",
            "libx264",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-shortest",
        ],
    ),
    "ntsc.mp4": (
        "video",
        ["-f", "lavfi", "-i", VIDEO.format(rate="30000/1001", seconds=0.5), "-c:v", "libx264", "-pix_fmt", "yuv420p"],
    ),
    "webm": (
        "video",
        [
            "-f",
            "lavfi",
            "-i",
            VIDEO.format(rate=12, seconds=1),
            "-f",
            "lavfi",
            "-i",
            TONE.format(hz=48000, seconds=1),
            "-c:v",
            "libvpx-vp9",
            "-pix_fmt",
            "yuv420p",
            "-deadline",
            "realtime",
            "-cpu-used",
            "8",
            "-c:a",
            "libopus",
            "-shortest",
        ],
    ),
    "wav": ("audio", ["-f", "lavfi", "-i", TONE.format(hz=22050, seconds=0.7)]),
    "mp3": ("audio", ["-f", "lavfi", "-i", TONE.format(hz=44100, seconds=0.9), "-ac", "2", "-c:a", "libmp3lame"]),
    "ogg": ("audio", ["-f", "lavfi", "-i", TONE.format(hz=48000, seconds=0.8), "-c:a", "libopus"]),
}
FORMAT_NAME = {"jpg": "jpeg", "ntsc.mp4": "mp4"}


def _encoders() -> str:
    return subprocess.run([ffmpeg_exe(), "-hide_banner", "-encoders"], capture_output=True, text=True).stdout


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> dict[str, Path]:
    """Every sample file, made once per module with the ffmpeg boardflow uses."""
    folder = tmp_path_factory.mktemp("media")
    encoders = _encoders()
    made = {}
    for name, (_, args) in SAMPLES.items():
        needs = [enc for enc in ("libvpx-vp9", "libopus", "libwebp", "libmp3lame") if enc in args]
        if any(f" {enc} " not in encoders for enc in needs):
            continue  # the test for this sample skips with the reason
        out = folder / f"sample.{name}"
        subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", *args, str(out)], check=True)
        made[name] = out
    return made


def _sample(media: dict[str, Path], name: str) -> Path:
    if name not in media:
        pytest.skip(f"this ffmpeg binary lacks an encoder for .{name} ({ffmpeg_exe()})")
    return media[name]


def ffmpeg_report(path: Path) -> dict:
    """What `ffmpeg -i` prints about a file: duration, size, frame rate, sample rate, channels."""
    err = subprocess.run([ffmpeg_exe(), "-hide_banner", "-i", str(path)], capture_output=True, text=True).stderr
    facts: dict = {}
    if m := re.search(r"Duration: (\d+):(\d\d):(\d\d\.\d+)", err):
        facts["duration"] = int(m[1]) * 3600 + int(m[2]) * 60 + float(m[3])
    if video := re.search(r"Stream #\S+: Video: (.*)", err):
        size = re.search(r"\b(\d{2,5})x(\d{2,5})\b", video[1])
        facts["width"], facts["height"] = int(size[1]), int(size[2])
        if fps := re.search(r"([\d.]+) fps", video[1]):
            facts["fps"] = float(fps[1])
    if audio := re.search(r"Stream #\S+: Audio: .*?(\d+) Hz, ([^,]+),", err):
        facts["sample_rate"] = int(audio[1])
        layout = audio[2].strip()
        facts["channels"] = {"mono": 1, "stereo": 2}.get(layout) or int(layout.split()[0])
    return facts


@pytest.mark.parametrize("name", list(SAMPLES))
async def test_probe_and_store_report_what_ffmpeg_reports(media, name, ctx, store):
    path = _sample(media, name)
    kind = SAMPLES[name][0]
    want = ffmpeg_report(path)
    info = probe(path, kind)
    assert info.kind == kind
    assert info.format == FORMAT_NAME.get(name, name)
    if kind in ("image", "video"):
        assert (info.width, info.height) == (want["width"], want["height"]) == (80, 48)
    if kind == "video":
        assert round(info.fps, 2) == want["fps"]
        assert info.duration == pytest.approx(want["duration"], abs=1 / info.fps)
        assert info.has_audio == ("sample_rate" in want)
    if kind == "audio":
        assert (info.sample_rate, info.channels) == (want["sample_rate"], want["channels"])
        # ffmpeg prints centiseconds, so agreement is to within that rounding.
        assert info.duration == pytest.approx(want["duration"], abs=0.011)

    # Storing probes the same facts from the bytes and records them in the artifact and its sidecar.
    artifact = await getattr(ctx, f"store_{kind}_result")(path)
    assert artifact.model_dump(include=set(info.artifact_fields())) == info.artifact_fields()
    key = store.key_for(artifact.storage_url)
    assert key.endswith("." + {"jpeg": "jpg"}.get(info.format, info.format))
    sidecar = json.loads(store.local_path(key).with_suffix(".json").read_text())
    assert sidecar["type"] == kind and sidecar["format"] == info.format
    assert sidecar.get("width") == info.width and sidecar.get("duration") == info.duration


def _objects(store) -> list[str]:
    folder = store.root / "objects"
    return sorted(str(p) for p in folder.rglob("*")) if folder.exists() else []


def _truncated(src: Path, dest: Path, keep: float = 0.5) -> Path:
    data = src.read_bytes()
    dest.write_bytes(data[: int(len(data) * keep)])
    return dest


BAD_FILES = [
    # (case, how to make the file from the samples, function to store it with, words in the error)
    ("truncated png", lambda m, t: _truncated(m["png"], t / "cut.png"), "image", "not a decodable image"),
    ("random bytes named .mp4", lambda m, t: _write(t / "noise.mp4", os.urandom(4096)), "video", "not a decodable"),
    ("mp4 cut before its index", lambda m, t: _truncated(m["mp4"], t / "cut.mp4", 0.6), "video", "not a decodable"),
    ("faststart mp4 cut mid-stream", lambda m, t: _faststart_cut(m, t), "video", "cut short"),
    ("webm cut mid-stream", lambda m, t: _truncated(_sample(m, "webm"), t / "cut.webm", 0.7), "video", "cut short"),
    ("mp3 cut mid-stream", lambda m, t: _truncated(m["mp3"], t / "cut.mp3", 0.7), "audio", "cut short"),
    ("empty file as image", lambda m, t: _write(t / "empty.png", b""), "image", "not a decodable image"),
    ("empty file as video", lambda m, t: _write(t / "empty.mp4", b""), "video", "not a decodable"),
    ("empty file as audio", lambda m, t: _write(t / "empty.wav", b""), "audio", "not a decodable"),
    ("wav stored as video", lambda m, t: m["wav"], "video", "no video stream"),
    ("mp4 stored as image", lambda m, t: m["mp4"], "image", "not a decodable image"),
    ("png stored as video", lambda m, t: m["png"], "video", "still image"),
    ("png stored as audio", lambda m, t: m["png"], "audio", "still image"),
    ("jpeg stored as video", lambda m, t: m["jpg"], "video", "still image"),
    ("video stored as audio", lambda m, t: m["mp4"], "audio", "has a video stream"),
    ("mp3 stored as image", lambda m, t: m["mp3"], "image", "not a decodable image"),
    ("text stored as image", lambda m, t: _write(t / "note.png", b"just words\n"), "image", "not a decodable image"),
]


def _faststart_cut(media: dict[str, Path], folder: Path) -> Path:
    """An MP4 with its index up front, cut mid-stream: it opens and its first frame decodes."""
    whole = folder / "fast.mp4"
    subprocess.run(
        [
            ffmpeg_exe(),
            "-v",
            "error",
            "-y",
            "-i",
            str(media["mp4"]),
            "-c",
            "copy",
            "-movflags",
            "+faststart",
            str(whole),
        ],
        check=True,
    )
    return _truncated(whole, folder / "fast-cut.mp4", 0.6)


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(("case", "make", "kind", "words"), BAD_FILES, ids=[c[0] for c in BAD_FILES])
async def test_corrupt_and_mislabelled_files_are_refused_and_not_stored(
    media, tmp_path, ctx, store, case, make, kind, words
):
    path = make(media, tmp_path)
    with pytest.raises(ArtifactDecodeError, match=words) as info:
        await getattr(ctx, f"store_{kind}_result")(path)
    assert info.value.hint, "the refusal must say what to do"
    assert _objects(store) == []


@pytest.mark.parametrize(
    ("name", "kind", "declared"),
    [
        ("png", "image", "jpeg"),
        ("jpg", "image", "png"),
        ("webm", "video", "mp4"),
        ("wav", "audio", "mp3"),
        ("mp4", "video", "webm"),
    ],
)
async def test_a_declared_format_that_disagrees_with_the_bytes_is_refused(media, ctx, store, name, kind, declared):
    with pytest.raises(ArtifactDecodeError, match=f"Declared format '{declared}'"):
        await getattr(ctx, f"store_{kind}_result")(_sample(media, name), format=declared)
    assert _objects(store) == []


async def test_a_live_recorded_webm_without_a_duration_in_its_header_is_measured(ctx, media):
    _sample(media, "webm")  # skips when the binary has no VP9 encoder
    # Written to a pipe, the muxer cannot seek back to write the duration, as with browser recordings.
    data = subprocess.run(
        [
            ffmpeg_exe(),
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            VIDEO.format(rate=10, seconds=1.5),
            "-c:v",
            "libvpx-vp9",
            "-deadline",
            "realtime",
            "-cpu-used",
            "8",
            "-f",
            "webm",
            "pipe:1",
        ],
        capture_output=True,
        check=True,
    ).stdout
    assert "duration" not in ffmpeg_report(_write(ctx.temp_path(".webm"), data))
    video = await ctx.store_video_result(data)
    assert (video.format, video.fps, video.width) == ("webm", 10.0, 80)
    assert video.duration == pytest.approx(1.5, abs=0.1)


async def test_a_declared_format_that_agrees_under_another_spelling_is_accepted(media, ctx):
    artifact = await ctx.store_image_result(media["jpg"], format="JPG")
    assert artifact.format == "jpeg"


async def test_run_ffmpeg_reports_progress_and_fails_with_command_and_stderr(tmp_path):
    seen: list[float] = []
    out = tmp_path / "clip.mp4"
    await run_ffmpeg(
        ["-f", "lavfi", "-i", VIDEO.format(rate=10, seconds=2), "-c:v", "libx264", "-pix_fmt", "yuv420p", str(out)],
        duration=2.0,
        progress=lambda f, _: seen.append(f),
    )
    assert probe(out, "video").duration == pytest.approx(2.0, abs=0.1)
    assert seen and seen == sorted(seen) and seen[-1] == pytest.approx(1.0, abs=0.1)

    missing = tmp_path / "no-such-input.wav"
    with pytest.raises(MediaProcessingError) as info:
        await run_ffmpeg(["-i", str(missing), str(tmp_path / "x.mp3")], what="transcode")
    err = info.value
    assert str(missing) in err.command and "no-such-input.wav" in err.stderr_tail
    assert "transcode failed" in str(err) and err.hint in str(err)


# A parent that starts a helper the way run_ffmpeg and the speech worker do, prints the helper's pid, and waits.
_PARENT = """
import asyncio
from generators.media import child_setup

async def main():
    helper = await asyncio.create_subprocess_exec("sleep", "600", preexec_fn=child_setup(nice=7))
    print(helper.pid, flush=True)
    await helper.wait()

asyncio.run(main())
"""


def test_a_helper_process_dies_with_its_sigkilled_parent_and_keeps_its_nice_level():
    parent = subprocess.Popen(
        [sys.executable, "-c", _PARENT], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        helper = int(parent.stdout.readline())
        stat = Path(f"/proc/{helper}/stat").read_text().rsplit(")", 1)[1].split()
        assert int(stat[16]) == 7, "the nice level was lost"  # field 19 of /proc/pid/stat
        parent.kill()
        parent.wait(timeout=10)
        deadline = time.monotonic() + 5
        while (gone := _gone(helper)) is False and time.monotonic() < deadline:
            time.sleep(0.02)
        assert gone, "the helper outlived its SIGKILLed parent"
    finally:
        try:
            os.killpg(parent.pid, 9)
        except ProcessLookupError:
            pass


def _gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


async def test_reap_closes_the_pipes_even_when_its_own_wait_is_cancelled():
    # After a Ctrl-C, a subprocess transport whose pipes had not reached EOF was closed by the garbage collector
    # after the event loop, printing "Exception ignored in BaseSubprocessTransport.__del__ … Event loop is closed"
    # with a traceback (seen in CI): the cleanup's own wait had been cancelled too (asyncio.run cancels every task
    # left). A grandchild holding stdout open keeps that wait pending here for as long as the test needs.
    import contextlib
    import signal

    from generators.media import reap

    proc = await asyncio.create_subprocess_exec(
        "sh", "-c", "sleep 60 & echo started; wait", stdout=asyncio.subprocess.PIPE, start_new_session=True
    )
    try:
        assert proc.stdout is not None
        assert await proc.stdout.readline() == b"started\n"
        cleanup = asyncio.create_task(reap(proc))
        while proc.returncode is None:  # reap killed sh; its wait now waits for the grandchild's stdout
            await asyncio.sleep(0.01)
        cleanup.cancel()
        with pytest.raises(asyncio.CancelledError):
            await cleanup
        transport = proc._transport  # type: ignore[attr-defined]
        assert transport.is_closing(), "the subprocess transport was left for the garbage collector"
        assert transport.get_pipe_transport(1).is_closing(), "stdout was left open for the garbage collector"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)


async def test_a_cancelled_ffmpeg_is_killed_and_its_transport_closed_while_the_loop_runs(monkeypatch):
    # Left open, the transport is closed by the garbage collector after the loop, printing "Exception ignored in
    # BaseSubprocessTransport.__del__ … Event loop is closed" with a traceback after a Ctrl-C (seen in CI).
    made: list[asyncio.subprocess.Process] = []
    real = asyncio.create_subprocess_exec

    async def recording(*args, **kwargs):
        made.append(await real(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(asyncio, "create_subprocess_exec", recording)
    task = asyncio.create_task(
        run_ffmpeg(["-f", "lavfi", "-i", "testsrc=size=640x360:rate=30", "-t", "120", "-f", "null", "-"], duration=120)
    )
    while not made:
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    (proc,) = made
    assert proc.returncode is not None, "ffmpeg outlived its cancelled caller"
    assert proc._transport.is_closing(), "the subprocess transport was left for the garbage collector"  # type: ignore[attr-defined]
