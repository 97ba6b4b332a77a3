"""Two builds of dlas_fast side by side, in one invocation: each loading configuration
of ``loader_loop.py`` (SingleImageDataset ``a``/``b``, ImageFolderDataset
``folder-a``/``folder-b``; ``create_dataloader``'s collate and a hand-built DataLoader's
default collate) run alternately on each build for a few rounds, then each
configuration's median samples/s and CPU time per sample (main process and workers
together: steadier than throughput on a shared machine) per build, and their ratios.

With ``--batch-cpu`` it compares ``batch_cpu.py`` instead: each configuration's batches
made in one process as a worker makes them (private and shared memory), CPU time per
sample, without the DataLoader around them (steadier still).

A build is a folder holding an installed ``dlas_fast`` (``pip install --target DIR``,
or a copy of a venv's ``site-packages/dlas_fast``), put first on ``PYTHONPATH``.

    python benches/ab_builds.py /tmp/before /tmp/after --rounds 3 --seconds 15
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent
CONFIGS = ["a", "b", "folder-a", "folder-b"]


def run(build: str, config: str, collate: str, seconds: float) -> tuple[float, float]:
    env = dict(os.environ, PYTHONPATH=build)
    cmd = [sys.executable, str(HERE / "loader_loop.py"), config, str(seconds),
           "--collate", collate]  # fmt: skip
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
    found = re.search(r"(\d+) samples/s, (\d+) us CPU per sample", out)
    if not found or not out.startswith(build):
        raise SystemExit(f"unexpected output of {build}: {out!r}")
    return float(found.group(1)), float(found.group(2))


def run_batch_cpu(build: str, config: str, shared: str, batches: int) -> float:
    env = dict(os.environ, PYTHONPATH=build)
    cmd = [sys.executable, str(HERE / "batch_cpu.py"), config, str(batches)]
    if shared == "shared":
        cmd.append("--shared")
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
    found = re.search(r"([\d.]+) us CPU per sample", out)
    if not found or not out.startswith(build):
        raise SystemExit(f"unexpected output of {build}: {out!r}")
    return float(found.group(1))


def batch_cpu(builds: list[str], args) -> None:
    figures: dict = {}
    for r in range(args.rounds):
        for config in args.config:
            for shared in ("private", "shared"):
                for build in builds if r % 2 == 0 else builds[::-1]:
                    cpu = run_batch_cpu(build, config, shared, args.batches)
                    figures.setdefault((config, shared), {}).setdefault(build, []).append(cpu)
                    print(f"round {r + 1}: {config:9} {shared:7} {build}: {cpu:.0f} us/sample",
                          flush=True)  # fmt: skip
    print("\n| configuration | batch memory | CPU us/sample before | after | after / before |")
    print("|---|---|---|---|---|")
    for (config, shared), per in figures.items():
        b, a = (statistics.median(per[x]) for x in builds)
        print(f"| {config} | {shared} | {b:.0f} | {a:.0f} | {a / b:.3f} |")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("before")
    p.add_argument("after")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--seconds", type=float, default=15.0)
    p.add_argument("--config", nargs="+", default=CONFIGS)
    p.add_argument("--collate", nargs="+", default=["dlas", "torch"])
    p.add_argument("--batch-cpu", action="store_true")
    p.add_argument("--batches", type=int, default=150)
    args = p.parse_args()
    builds = [os.path.abspath(args.before), os.path.abspath(args.after)]
    if args.batch_cpu:
        batch_cpu(builds, args)
        return 0
    figures: dict = {}
    for r in range(args.rounds):
        for config in args.config:
            for collate in args.collate:
                for build in builds if r % 2 == 0 else builds[::-1]:
                    rate, cpu = run(build, config, collate, args.seconds)
                    per = figures.setdefault((config, collate), {})
                    per.setdefault(build, []).append((rate, cpu))
                    print(f"round {r + 1}: {config:9} {collate:5} {build}: {rate:.0f}/s, "
                          f"{cpu:.0f} us CPU/sample", flush=True)  # fmt: skip
    print("\n| configuration | collate | samples/s before | after | after / before "
          "| CPU us/sample before | after | after / before |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    for (config, collate), per in figures.items():
        (rb, cb), (ra, ca) = (
            (statistics.median(r for r, _ in per[x]), statistics.median(c for _, c in per[x]))
            for x in builds
        )
        print(f"| {config} | {collate} | {rb:.0f} | {ra:.0f} | {ra / rb:.3f} "
              f"| {cb:.0f} | {ca:.0f} | {ca / cb:.3f} |")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
