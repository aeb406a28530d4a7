"""Kill a storyboard run with SIGKILL half-way, run it again: finished steps come from the cache, none is made twice.

Run: .venv/bin/python -m bench.kill_resume_bench [--scenes 4] [--resolution 640x360]

Against a `prefect server start` running beside it (started here). The first run is a child process in its
own process group; the bench watches the result index (`<store>/results/*.json`, one file per finished
step) and SIGKILLs the Python process alone once half of the step runs have finished, as the OOM killer
would: its ffmpeg children must die with it (what survives 5 s is counted, then the group is killed).
The second run, a new process on the same data folder, must then:
- take exactly the steps finished before the kill from the cache (cost records say cached) and execute
  exactly the rest;
- make nothing twice: no artifact of a step finished before the kill is stored again (each sidecar lists
  the flow runs that stored it), and no step executes more than once in the second run;
- finish at all: a SIGKILLed step leaves its cache lock behind, which must not block its re-run;
- clean up after the killed one: on the server it is Crashed, not Running, and its `boardflow-<pid>-*`
  scratch folders are gone from the temp dir.
Then the store is damaged three ways — an object deleted together with its `results/` record (Prefect's
own cache record is all that still names it), bytes flipped inside the final MP4, and bytes flipped inside
an intermediate PNG — and the pipeline runs a third time. It must re-make exactly the steps whose artifacts
were damaged (the tally says why), and afterwards every object a result names must hold the bytes its
sha256 names: bytes served that do not match their name must be 0. (Bills per result are measured where
there are bills: bench/hosted_batch_bench.py.)
Exit 1 if any of that fails.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.orchestration_bench import RESULT_MARK, base_env, load, prefect_server, run_child, storyboard_params
from generators.storage import sha256_file


def finished_results(store: Path) -> set[str]:
    folder = store / "results"
    return {p.stem for p in folder.glob("*.json")} if folder.exists() else set()


def kill_half_way(
    cmd: list[str], env: dict[str, str], store: Path, total: int, deadline_s: float
) -> tuple[set[str], int, tuple[int, int]]:
    """Start the run, SIGKILL its Python process when half the steps are done.

    (cache keys done by then, the run's pid, (its child processes at the kill, those alive 5 s after))."""
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + deadline_s
    try:
        while len(finished_results(store)) < total / 2:
            if proc.poll() is not None:
                raise RuntimeError(f"the run ended (exit {proc.returncode}) before half of it was done")
            if time.monotonic() > deadline:
                raise TimeoutError(f"half of the steps were not done after {deadline_s:.0f} s")
            time.sleep(0.05)  # the poll interval: killing sooner or later than "half" by one step is fine
        at_kill = len(group_members(proc.pid)) - 1  # its children (ffmpeg, the speech worker) at that moment
        proc.kill()
        proc.wait()
        gone_by = time.monotonic() + 5
        while (survivors := len(group_members(proc.pid))) and time.monotonic() < gone_by:
            time.sleep(0.05)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # whatever outlived the run
        proc.wait()
    return (
        finished_results(store),
        proc.pid,
        (at_kill, survivors),
    )  # read after the kill: a step may have finished meanwhile


def group_members(pgid: int) -> list[int]:
    """Live (not zombie) processes of process group `pgid`, from /proc."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if fields[0] != "Z" and int(fields[3]) == pgid:
                found.append(int(stat.parent.name))
    return found


def flow_run_states(api_url: str) -> list[str]:
    import httpx

    runs = httpx.post(f"{api_url}/flow_runs/filter", json={"limit": 200}, timeout=30).raise_for_status().json()
    return sorted(run["state"]["name"] for run in runs if run.get("state"))


def sidecars(store: Path) -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in (store / "objects").rglob("*.json")}


def main(scenes: int, resolution: str) -> int:
    params = storyboard_params(scenes, resolution)
    total = 4 * scenes + 3  # narration, image, clip, narrated per scene; cut, music, final
    cmd = [sys.executable, "-m", "bench.orchestration_bench", "--child", "server", json.dumps(params)]
    with tempfile.TemporaryDirectory(prefix="kill-bench-") as tmp_name:
        tmp = Path(tmp_name)
        store = tmp / "data" / "store"
        with prefect_server(tmp / "server-home") as (api_url, _):
            scratch = tmp / "scratch"
            scratch.mkdir()
            env = {
                **base_env(tmp / "client-home"),
                "PREFECT_API_URL": api_url,
                "BOARDFLOW_DATA_DIR": str(tmp / "data"),
                "TMPDIR": str(scratch),
            }
            started = time.perf_counter()
            done_before, pid, survivors = kill_half_way(cmd, env, store, total, deadline_s=900)
            killed_after = time.perf_counter() - started
            print(f"killed after {killed_after:.1f} s with {len(done_before)}/{total} steps finished · {load()}")
            states_after_kill = flow_run_states(api_url)
            folders_after_kill = len(list(scratch.glob(f"boardflow-{pid}-*")))
            stale_locks = len(list((tmp / "data" / "locks").glob("*.lock")))
            made_before = {sha: set(meta.get("runs", [])) for sha, meta in sidecars(store).items()}
            indexed_before = {key: json.loads((store / "results" / f"{key}.json").read_text()) for key in done_before}

            second = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1800)
            if second.returncode:
                print(f"the second run failed:\n{second.stderr[-4000:]}")
                return 1
            line = next(ln for ln in second.stdout.splitlines() if ln.startswith(RESULT_MARK))
            result = json.loads(line.removeprefix(RESULT_MARK))
            made_after = {sha: set(meta.get("runs", [])) for sha, meta in sidecars(store).items()}
            hygiene = {
                "child processes at the kill": survivors[0],
                "child processes alive 5 s after the kill": survivors[1],
                "flow run states after the kill": states_after_kill,
                "flow run states after the next start": flow_run_states(api_url),
                "scratch folders of the killed run, after the kill": folders_after_kill,
                "scratch folders of the killed run, after the next start": len(
                    list(scratch.glob(f"boardflow-{pid}-*"))
                ),
            }
            needing = damage(store, result)
            third = run_child("bench.orchestration_bench", cmd[3:], env)
            mismatched = served_mismatches(store)
    print(f"second run: {result['seconds']:.1f} s, {result['cached']}/{result['steps']} step runs from the cache")
    failed = report(result, indexed_before, made_before, made_after, total, stale_locks, hygiene)
    return report_damage(needing, third, mismatched) or failed


def result_artifacts(record: dict) -> list[dict]:
    return [
        art
        for value in record["outputs"].values()
        for art in (value if isinstance(value, list) else [value])
        if isinstance(art, dict) and "sha256" in art
    ]


def flip_a_byte(path: Path) -> None:
    with path.open("r+b") as fh:
        fh.seek(path.stat().st_size // 2)
        byte = fh.read(1)
        fh.seek(-1, 1)
        fh.write(bytes([byte[0] ^ 0xFF]))


def damage(store: Path, result: dict) -> dict[str, str]:
    """Delete an audio object with its results/ record, flip bytes in the final MP4 and in one PNG.

    Returns what each damaged object was (sha256 → fault): the steps whose results name them need re-making."""
    records = {p: json.loads(p.read_text()) for p in (store / "results").glob("*.json")}
    by_sha = {art["sha256"]: (path, art) for path, rec in records.items() for art in result_artifacts(rec)}
    final = result["outputs"]["video"]["sha256"]
    png = next(sha for sha, (_, art) in by_sha.items() if art.get("format") == "png")
    wav = next(sha for sha, (_, art) in by_sha.items() if art.get("kind") == "audio" and sha != final)
    for sha in (final, png):
        flip_a_byte(next((store / "objects" / sha[:2]).glob(f"{sha}.[!j]*")))
    next((store / "objects" / wav[:2]).glob(f"{wav}.[!j]*")).unlink()
    by_sha[wav][0].unlink()  # its results/ record too: only Prefect's cache record still names it
    return {final: "bytes changed", png: "bytes changed", wav: "object missing"}


def served_mismatches(store: Path) -> list[str]:
    """Objects named by a result of the index whose bytes are missing or hash to something else."""
    bad = []
    for path in (store / "results").glob("*.json"):
        for art in result_artifacts(json.loads(path.read_text())):
            found = list((store / "objects" / art["sha256"][:2]).glob(f"{art['sha256']}.[!j]*"))
            if not found or sha256_file(found[0])[0] != art["sha256"]:
                bad.append(art["sha256"][:12])
    return bad


def report_damage(needing: dict[str, str], third: dict, mismatched: list[str]) -> int:
    remade = third["remade"]
    print(f"\nDamaged store ({len(needing)} objects: {sorted(needing.values())}), then run again:")
    print(f"  steps re-made / steps that needed re-making: {len(remade)} / {len(needing)}")
    for step, why in sorted(remade.items()):
        print(f"    {step}: {why}")
    print(f"  bytes served that do not match their name: {len(mismatched)} (must be 0)")
    problems = []
    if sorted(w.removeprefix("re-made: ") for w in remade.values()) != sorted(needing.values()):
        problems.append("the steps re-made are not the ones whose artifacts were damaged")
    if mismatched:
        problems.append(f"objects named by results do not hold their bytes: {mismatched}")
    for problem in problems:
        print(f"  FAILED: {problem}")
    return 1 if problems else 0


def report(
    result: dict, indexed_before: dict, made_before: dict, made_after: dict, total: int, locks: int, hygiene: dict
) -> int:
    problems = []
    if hygiene["child processes alive 5 s after the kill"]:
        problems.append("child processes (ffmpeg, the speech worker) outlived the killed run")
    if hygiene["flow run states after the next start"] != ["Completed", "Crashed"]:
        problems.append("the killed run is not Crashed on the server after the next start")
    if hygiene["scratch folders of the killed run, after the next start"]:
        problems.append("the killed run's scratch folders were not removed on the next start")
    done = len(indexed_before)
    if result["steps"] != total:
        problems.append(f"the second run recorded {result['steps']} step runs, not {total}")
    if result["cached"] != done:
        problems.append(f"{result['cached']} steps came from the cache, but {done} had finished before the kill")
    executed = result["steps"] - result["cached"]
    finished_arts = {
        art["sha256"]
        for res in indexed_before.values()
        for value in res["outputs"].values()
        for art in (value if isinstance(value, list) else [value])
        if isinstance(art, dict) and "sha256" in art
    }
    made_twice = sorted(sha[:12] for sha in finished_arts if made_after.get(sha) != made_before.get(sha))
    if made_twice:
        problems.append(f"artifacts of steps finished before the kill were stored again: {made_twice}")
    redone = [sha for sha, runs in made_before.items() if sha not in finished_arts and made_after.get(sha) != runs]
    print(f"\nSIGKILL half-way, then run again ({total} step runs):")
    print(f"  finished before the kill: {done}; from the cache in the second run: {result['cached']}")
    print(f"  executed in the second run: {executed} (= {total} - {done}: {executed == total - done})")
    print(f"  artifacts of finished steps stored again: {len(made_twice)} of {len(finished_arts)}")
    print(f"  artifacts of steps cut off by the kill, made again: {len(redone)} (their work was lost with the process)")
    print(f"  cache locks left behind by the killed run: {locks} (broken, since their holder is gone)")
    print("  after the SIGKILL of the run's Python process alone:")
    for what, value in hygiene.items():
        print(f"    {what}: {value}")
    for problem in problems:
        print(f"  FAILED: {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", type=int, default=4)
    parser.add_argument("--resolution", default="640x360")
    args = parser.parse_args()
    sys.exit(main(args.scenes, args.resolution))
