"""Store and resolve a big file through each artifact store; time against cp / boto3 and check peak RSS.

    .venv/bin/python -m bench.store_bench               # 1 GiB
    .venv/bin/python -m bench.store_bench --size-mb 128 # quicker

Every measured operation runs in a child process, so its peak RSS (ru_maxrss) is the peak of that
operation alone. The S3 endpoint is moto's server in its own process (it keeps objects in memory and
on temp files), so the server's memory never counts against ours.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MiB = 1024 * 1024
RSS_TARGET_MIB = 150
BUCKET = "bench-store"


# -- children: one measured operation each ---------------------------------------------------------
def _rss_mib() -> float:
    """Peak RSS of this process so far, in MiB."""
    # VmHWM belongs to this process's own address space. ru_maxrss is not enough on Linux: it survives
    # execve, so a child starts with its parent's peak as its floor.
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (1024 if sys.platform != "darwin" else MiB)


async def _ours(store, src: Path) -> dict:
    """put_file, then resolve the artifact back to a local path the way a downstream step would."""
    from generators.artifacts import LoRAArtifact
    from generators.context import GeneratorContext

    started = time.perf_counter()
    stored = await store.put_file(src, "safetensors")
    put_done = time.perf_counter()
    artifact = LoRAArtifact(
        sha256=stored.sha256, storage_url=stored.url, format="safetensors", size_bytes=stored.size_bytes
    )
    async with GeneratorContext(store) as ctx:
        path = await ctx.resolve_artifact(artifact)
        resolved = time.perf_counter()
        if path.stat().st_size != src.stat().st_size:
            raise SystemExit(f"resolved {path} has {path.stat().st_size} bytes, expected {src.stat().st_size}")
    return {
        "put_s": put_done - started,
        "resolve_s": resolved - put_done,
        "total_s": resolved - started,
        "created": stored.created,
    }


def _child(op: str, src: Path, work: Path, endpoint: str | None) -> dict:
    # Everything is imported before the baseline RSS reading, so "delta" is what the operation adds.
    import boto3

    from generators.storage import LocalStore
    from generators.storage.s3 import S3Store

    before = _rss_mib()
    if op == "local-ours":
        result = asyncio.run(_ours(LocalStore(work / "store"), src))
    elif op == "s3-ours":
        result = asyncio.run(_ours(S3Store(BUCKET, prefix="ours", endpoint_url=endpoint), src))
    elif op == "s3-baseline":
        client = boto3.client("s3", endpoint_url=endpoint)
        started = time.perf_counter()
        client.upload_file(str(src), BUCKET, "baseline/blob")
        put_done = time.perf_counter()
        client.download_file(BUCKET, "baseline/blob", str(work / "baseline-download"))
        done = time.perf_counter()
        result = {"put_s": put_done - started, "resolve_s": done - put_done, "total_s": done - started}
    else:
        raise SystemExit(f"unknown operation {op!r}")
    return {**result, "rss_before_mib": before, "rss_peak_mib": _rss_mib()}


def _run_child(op: str, src: Path, work: Path, endpoint: str | None) -> dict:
    os.sync()  # start every measurement with no dirty pages left over from the previous one
    cmd = [sys.executable, "-m", "bench.store_bench", "--child", op, "--src", str(src), "--work", str(work)]
    if endpoint:
        cmd += ["--endpoint", endpoint]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{op} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# -- the parent: data, server, baselines, report -----------------------------------------------------
def _make_file(path: Path, size_mb: int) -> None:
    """Random-ish bytes (a random block with a changing counter), written a chunk at a time."""
    block = bytearray(os.urandom(4 * MiB))
    with path.open("wb") as fh:
        for i in range(size_mb // 4 + (size_mb % 4 > 0)):
            block[:8] = i.to_bytes(8, "little")
            fh.write(block if (i + 1) * 4 <= size_mb else block[: (size_mb % 4) * MiB])


def _time_cp(src: Path, dest: Path) -> float:
    os.sync()
    started = time.perf_counter()
    subprocess.run(["cp", str(src), str(dest)], check=True)
    return time.perf_counter() - started


def _start_moto(env: dict) -> tuple[subprocess.Popen, str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    endpoint = f"http://127.0.0.1:{port}"
    import httpx

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit("moto server exited at start; is moto[server] installed? (pip install -e '.[dev]')")
        try:
            httpx.get(endpoint, timeout=1)
            return server, endpoint
        except httpx.TransportError:
            time.sleep(0.1)  # polling a server that is still starting, bounded by the deadline
    server.kill()
    raise SystemExit(f"moto server did not answer on {endpoint} within 60 s")


def _fmt(name: str, r: dict, size_mb: int) -> str:
    rate = size_mb / r["total_s"]
    rss = (
        f"peak RSS {r['rss_peak_mib']:6.1f} MiB (+{r['rss_peak_mib'] - r['rss_before_mib']:.1f})"
        if ("rss_peak_mib" in r)
        else ""
    )
    parts = f"put {r['put_s']:6.2f} s  resolve {r['resolve_s']:6.2f} s" if "put_s" in r else " " * 31
    return f"  {name:<22} {parts}  total {r['total_s']:6.2f} s  {rate:7.1f} MiB/s  {rss}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=1024, help="Size of the test file in MiB (default 1024).")
    parser.add_argument("--repeat", type=int, default=3, help="Local runs to take the best of (default 3).")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--src", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--endpoint", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_child(args.child, args.src, args.work, args.endpoint)))
        return

    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    os.environ.update(env)  # children inherit the dummy credentials
    work = Path(tempfile.mkdtemp(prefix="boardflow-bench-"))
    server = None
    try:
        src = work / "weights.safetensors"
        started = time.perf_counter()
        _make_file(src, args.size_mb)
        print(f"{args.size_mb} MiB test file written in {time.perf_counter() - started:.1f} s ({work})")

        print(f"local store (LocalStore.put_file + resolve_artifact) vs cp, best of {args.repeat}:")
        cp_runs, local_runs = [], []
        for _ in range(args.repeat):  # local runs are quick and noisy (writeback): alternate, keep the best
            cp_runs.append({"total_s": _time_cp(src, work / "cp-copy")})
            (work / "cp-copy").unlink()
            local_runs.append(_run_child("local-ours", src, work, None))
            shutil.rmtree(work / "store")
        cp = min(cp_runs, key=lambda r: r["total_s"])
        local = min(local_runs, key=lambda r: r["total_s"])
        local["rss_peak_mib"] = max(r["rss_peak_mib"] for r in local_runs)
        print(_fmt("cp", cp, args.size_mb))
        print(_fmt("boardflow local", local, args.size_mb))

        server, endpoint = _start_moto(env)
        import boto3

        boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=BUCKET)
        print(
            f"S3 store (S3Store.put_file + resolve_artifact) vs boto3 upload_file + download_file, moto at {endpoint}:"
        )
        baseline = _run_child("s3-baseline", src, work, endpoint)
        (work / "baseline-download").unlink()
        s3 = _run_child("s3-ours", src, work, endpoint)
        print(_fmt("boto3 upload+download", baseline, args.size_mb))
        print(_fmt("boardflow S3", s3, args.size_mb))
        print("  (moto copies the whole object for every ranged GET, so downloads in fewer, larger ranges win here;")
        print("   the baseline uses boto3's defaults: 8 MiB parts, 10 threads)")

        print("ratios (ours / baseline time; 1.00 = as fast, above 1 = slower):")
        print(f"  local: {local['total_s'] / cp['total_s']:.2f} x cp")
        print(
            f"  S3:    {s3['total_s'] / baseline['total_s']:.2f} x boto3 (put {s3['put_s'] / baseline['put_s']:.2f},"
            f" resolve {s3['resolve_s'] / baseline['resolve_s']:.2f})"
        )
        worst = max(local["rss_peak_mib"], s3["rss_peak_mib"])
        verdict = "OK" if worst < RSS_TARGET_MIB else "OVER TARGET"
        print(f"peak RSS of our store operations: {worst:.1f} MiB (target < {RSS_TARGET_MIB} MiB): {verdict}")
        if worst >= RSS_TARGET_MIB:
            sys.exit(1)
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
