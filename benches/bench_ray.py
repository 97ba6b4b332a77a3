"""Extraction on Ray vs the plain CLI, on one machine (the figures of docs/scale.md).

Pipelines, on the same corpus and in one invocation (runs interleaved, rotating order):

* ``cli``: ``dlas-fast extract SRC DST --threads T`` (whole-process wall time);
* ``ray, 1 worker``: :func:`dlas_fast.distributed.extract_ray` with one task at a time
  using T threads (``threads_per_task=T``);
* ``ray, W workers``: W tasks at a time, each with T / W threads.

Ray runs on a local instance started once with the machine's T cores (``ray.init``);
its start-up time is reported apart and not charged to the runs (a cluster is started
once per job, not per extraction). Each Ray run cuts the sources into four shards per
worker. Every run writes to a fresh temporary DST.

Run:
    python benches/bench_ray.py [--corpus DIR] [--runs 3] [--threads 2] [--json FILE]
The default corpus is $DLAS_FAST_PHOTOS or ~/.cache/dlas_fast/photos (built by
``benches/corpus.sh DEST``). Needs the ray extra (``pip install ray``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    default = os.environ.get("DLAS_FAST_PHOTOS", str(Path.home() / ".cache/dlas_fast/photos"))
    p.add_argument("--corpus", default=default)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json")
    args = p.parse_args()
    print("$", " ".join([sys.executable, *sys.argv]))

    import ray
    from dlas_fast.distributed import extract_ray

    t0 = time.perf_counter()
    ray.init(num_cpus=args.threads, include_dashboard=False, log_to_driver=False)
    print(f"ray.init with {args.threads} CPUs: {time.perf_counter() - t0:.2f} s (not charged)")

    tmp = Path(tempfile.mkdtemp(prefix="bench_ray-"))
    workers = [1] + ([args.threads] if args.threads > 1 else [])

    def cli(dst: Path) -> float:
        t = time.perf_counter()
        cmd = [sys.executable, "-m", "dlas_fast", "extract", args.corpus, str(dst),
               "--threads", str(args.threads), "--quiet"]  # fmt: skip
        subprocess.run(cmd, check=False, capture_output=True)
        return time.perf_counter() - t

    def on_ray(w: int):
        def run(dst: Path) -> float:
            t = time.perf_counter()
            extract_ray(args.corpus, dst, threads_per_task=args.threads // w, tasks=4 * w,
                        progress=False)  # fmt: skip
            return time.perf_counter() - t

        return run

    pipelines = {"cli": cli}
    for w in workers:
        pipelines[f"ray, {w} worker{'s' if w > 1 else ''}"] = on_ray(w)
    # Warm the page cache and Ray's worker pool once (not timed).
    cli(tmp / "warm-cli")
    on_ray(workers[-1])(tmp / "warm-ray")
    times: dict[str, list[float]] = {name: [] for name in pipelines}
    names = list(pipelines)
    for i in range(args.runs):
        order = names[i % len(names) :] + names[: i % len(names)]
        for name in order:
            secs = pipelines[name](tmp / f"{name.replace(' ', '_')}-{i}")
            times[name].append(secs)
            print(f"run {i + 1} {name}: {secs:.2f} s")
    ray.shutdown()
    shutil.rmtree(tmp, ignore_errors=True)

    base = statistics.median(times["cli"])
    print(f"\n| pipeline ({args.threads} cores) | median s | min s | vs cli |")
    print("|---|---|---|---|")
    for name in names:
        med = statistics.median(times[name])
        print(f"| {name} | {med:.2f} | {min(times[name]):.2f} | {base / med:.2f}x |")
    if args.json:
        Path(args.json).write_text(json.dumps(times, indent=1))


if __name__ == "__main__":
    main()
