"""Scale benchmark: how fast a pool is scored, and what splitting it over processes buys.

On one ASR checkpoint and a pool manifest (``--manifest``, its first ``--n`` rows), in one run:

- real-time factor (seconds of compute per second of audio) of ``earmark transcribe`` with
  greedy and with beam decoding, one process of 2 threads (the machine's cores);
- the same pool as 2 processes x 1 thread (``--shard i/2`` run at once, then ``--merge 2``)
  against 1 process x 2 threads, beam decoding: wall time, ratio, and whether the merged file
  has the bytes of a 1-process x 1-thread run (the parts are batched alike; a different thread
  count may sum in another order, so that comparison is made at one thread);
- peak memory (max RSS) of each process;
- with ``--memory-rows 1000 10000 100000``: peak memory and wall time of greedy transcription of
  pools of that many rows (the ``--n`` rows cycled, each copy its own id; greedy, so that 100k
  rows fit in a session): flat memory means the pool is streamed, never held.

Every figure is a wall time on this machine's cores (process start and model load included:
score enough rows that they do not count), measured in this run, so the ratios
compare like with like; the load average before and after is recorded. Prints a table and
writes ``--out``/bench_scale.json.

    python scripts/bench_scale.py --checkpoint CKPT --manifest POOL [--n 600] [--out runs/bench_scale]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from earmark.core.manifest import ManifestRow, read_manifest, write_manifest

EARMARK = str(Path(sys.executable).with_name("earmark"))


def _transcribe(ckpt: Path, manifest: Path, out: Path, *extra: str) -> list[str]:
    return [EARMARK, "transcribe", "--checkpoint", str(ckpt), "--manifest", str(manifest),
            "--out", str(out), *extra]  # fmt: skip


def _env(threads: int) -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}


def timed(cmds: list[tuple[list[str], int]], log: Path) -> dict[str, Any]:
    """Run ``cmds`` (command, threads) at once; wall seconds and each one's peak RSS (MiB)."""
    start = time.perf_counter()
    with log.open("a") as err:
        pids = [subprocess.Popen(c, env=_env(t), stdout=subprocess.DEVNULL, stderr=err).pid
                for c, t in cmds]  # fmt: skip
        rss = []
        for pid in pids:
            _, status, usage = os.wait4(pid, 0)
            if os.waitstatus_to_exitcode(status) != 0:
                raise SystemExit(f"a transcription failed: see {log}")
            rss.append(round(usage.ru_maxrss / 1024, 1))
    return {"wall_s": round(time.perf_counter() - start, 2), "max_rss_mib": rss}


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--checkpoint", type=Path, required=True, help="an earmark ASR checkpoint")
    p.add_argument("--manifest", type=Path, required=True, help="the pool (audio rows)")
    p.add_argument("--n", type=int, default=600, help="rows of the pool to score")
    p.add_argument("--out", type=Path, default=Path("runs/bench_scale"))
    p.add_argument(
        "--memory-rows", type=int, nargs="*", default=[],
        help="also: peak memory of greedy transcription of pools of these sizes",
    )  # fmt: skip
    p.add_argument("--skip-speed", action="store_true", help="only the --memory-rows part")
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rows = read_manifest(args.manifest)[: args.n]
    pool = args.out / "pool.jsonl"
    write_manifest(pool, rows)
    ck, o = args.checkpoint, args.out
    log = o / "transcribe.log"
    result: dict[str, Any] = {}
    if not args.skip_speed:
        result = speed(ck, pool, rows, o, log)
    if args.memory_rows:
        result["memory"] = memory(ck, rows, args.memory_rows, o, log)
    result["checkpoint"] = str(ck)
    (o / "bench_scale.json").write_text(json.dumps(result, indent=2))
    print(f"wrote {o / 'bench_scale.json'}")


def memory(ck: Path, rows: list[Any], sizes: list[int], o: Path, log: Path) -> list[dict]:
    """Greedy transcription of pools of ``sizes`` rows (``rows`` cycled): wall and peak RSS."""
    out = []
    for n in sizes:
        big = o / f"pool_{n}.jsonl"
        write_manifest(
            big,
            (ManifestRow(dataclasses.replace(rows[i % len(rows)].utterance, id=f"m{i:07d}"), None)
             for i in range(n)),
        )  # fmt: skip
        run = timed([(_transcribe(ck, big, o / f"mem_{n}.jsonl", "--decoding", "greedy"), 2)], log)
        lines = sum(1 for _ in (o / f"mem_{n}.jsonl").open())
        audio = sum(rows[i % len(rows)].utterance.duration or 0.0 for i in range(n))
        out.append({"rows": n, "predictions": lines, "audio_s": round(audio, 1), **run,
                    "rtf": round(run["wall_s"] / audio, 5) if audio else None})  # fmt: skip
        print(f"{n:>8} rows (greedy): {run['wall_s']:8.1f} s, max RSS {run['max_rss_mib'][0]} MiB")
        big.unlink()
        (o / f"mem_{n}.jsonl").unlink()
    return out


def speed(ck: Path, pool: Path, rows: list[Any], o: Path, log: Path) -> dict[str, Any]:
    """RTF of greedy and beam decoding, and 2 processes x 1 thread against 1 x 2."""
    audio_s = sum(r.utterance.duration or 0.0 for r in rows)
    load0 = os.getloadavg()[0]
    runs: dict[str, Any] = {}
    for method in ("greedy", "beam"):
        runs[f"1x2 {method}"] = timed(
            [(_transcribe(ck, pool, o / f"{method}.jsonl", "--decoding", method), 2)], log
        )
    runs["1x1 beam"] = timed(
        [(_transcribe(ck, pool, o / "one.jsonl", "--decoding", "beam"), 1)], log
    )
    runs["2x1 beam"] = timed([
        (_transcribe(ck, pool, o / "two.jsonl", "--decoding", "beam", "--shard", f"{i}/2"), 1)
        for i in range(2)
    ], log)  # fmt: skip
    merge = subprocess.run(_transcribe(ck, pool, o / "two.jsonl", "--merge", "2"),
                           capture_output=True, text=True)  # fmt: skip
    if merge.returncode != 0:
        raise SystemExit(merge.stdout + merge.stderr)
    identical = (o / "two.jsonl").read_bytes() == (o / "one.jsonl").read_bytes()
    for run in runs.values():
        run["rtf"] = round(run["wall_s"] / audio_s, 4)
    result = {
        "rows": len(rows),
        "audio_s": round(audio_s, 1),
        "runs": runs,
        "ratio_2x1_over_1x2": round(runs["1x2 beam"]["wall_s"] / runs["2x1 beam"]["wall_s"], 3),
        "merged_2x1_equals_1x1": identical,
        "load_before_after": [round(load0, 2), round(os.getloadavg()[0], 2)],
    }
    print(
        f"{len(rows)} utterances, {audio_s / 60:.1f} min of audio; load {result['load_before_after']}"
    )
    print(f"{'run':<12}{'wall s':>9}{'RTF':>9}  max RSS MiB")
    for name, run in runs.items():
        print(f"{name:<12}{run['wall_s']:>9.1f}{run['rtf']:>9.4f}  {run['max_rss_mib']}")
    print(f"2 processes x 1 thread vs 1 x 2 threads (beam): {result['ratio_2x1_over_1x2']:.2f}x; "
          f"merged file equals the 1 x 1 run's bytes: {identical}")  # fmt: skip
    return result


if __name__ == "__main__":
    main()
