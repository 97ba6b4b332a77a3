"""Frame-counter grouping (docs/spec.md §6): 1,000,000 frame names grouped into runs.

The names: 2,000 videos of 500 frames each (``<video>_<12-digit counter>``), with a
gap every 97 frames, shuffled. Timed: ``dlas_fast._native.frame_runs(names)`` (the
native grouping behind MultiFrameDataset, including passing the Python strings in)
and, for comparison, a plain Python sort-and-split doing the same.

Run:
    python benches/bench_frames.py [--videos 2000] [--frames 500] [--runs 3]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time

from dlas_fast._native import frame_runs


def python_runs(names: list[str]) -> list[list[int]]:
    order = sorted(range(len(names)), key=lambda i: (names[i][:-12], names[i][-12:]))
    runs, prev = [], None
    for i in order:
        source, counter = names[i][:-12], int(names[i][-12:])
        if prev is not None and prev == (source, counter - 1):
            runs[-1].append(i)
        else:
            runs.append([i])
        prev = (source, counter)
    return runs


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--videos", type=int, default=2000)
    p.add_argument("--frames", type=int, default=500)
    p.add_argument("--runs", type=int, default=3)
    args = p.parse_args()
    names = [
        f"video{v:05d}_{c + c // 97:012d}" for v in range(args.videos) for c in range(args.frames)
    ]
    random.Random(0).shuffle(names)
    print(f"command: {' '.join(sys.argv)}\n{len(names):,} names")
    ours, theirs = [], []
    for _ in range(args.runs):
        t = time.perf_counter()
        runs = frame_runs(names)
        ours.append(time.perf_counter() - t)
        t = time.perf_counter()
        py = python_runs(names)
        theirs.append(time.perf_counter() - t)
        assert len(runs) == len(py), (len(runs), len(py))
    print(f"dlas_fast frame_runs: {min(ours):.3f} s min, {statistics.median(ours):.3f} s median")
    print(
        f"plain Python:         {min(theirs):.3f} s min, {statistics.median(theirs):.3f} s median"
    )
    print(f"runs: {len(runs):,}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
