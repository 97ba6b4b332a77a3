"""Benchmark of the chunk index (docs/spec.md §3) on a synthetic tree of many tiles.

The tree: CHUNKS chunk folders of TILES empty tile files each (`%08d.jpg`), an empty
`ref.jpg`, and a real `centers.pt` (torch zip format, one entry per tile). It is made once
under --root and reused while its shape matches.

Measured, each in a fresh Python process (page cache warm, index cold), RUNS times:

* ``build``: ``ChunkIndex(root, cache="off")``: the parallel scan, nothing written;
* ``build+save``: ``ChunkIndex(root, cache="rebuild")``: scan and write the cache;
* ``start``: ``ChunkIndex(root)`` with a fresh cache: read it and check the fingerprint
  (one stat per chunk folder and per centers.pt);
* bytes per tile: the index's heap bytes, and the process's resident-set growth, divided
  by the number of tiles.

The same figures for a DLAS-style index (what ``BaseUnsupervisedImageDataset`` does: one
Python object per chunk holding a list of full tile path strings, built with ``os.walk``
and saved/loaded with ``torch.save``/``torch.load``) are measured side by side with
``--dlas`` (slow: it pickles a million strings).

Run:
    python benches/bench_index.py [--root /tmp/dlas_index_bench] [--chunks 10000]
                                  [--tiles 100] [--runs 3] [--dlas]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

# Shared by both measuring scripts: the process's resident set.
PRELUDE = r"""
import json, os, sys, time
def rss():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
"""

OURS = (
    PRELUDE
    + r"""
import dlas_fast
root, cache = sys.argv[1], sys.argv[2]
before = rss()
t = time.perf_counter()
index = dlas_fast.ChunkIndex(root, cache=cache)
secs = time.perf_counter() - t
print(json.dumps({"secs": secs, "tiles": index.num_tiles, "from_cache": index.from_cache,
                  "heap": index.resident_bytes, "rss_growth": rss() - before}))
"""
)

DLAS = (
    PRELUDE
    + r"""
import torch
EXTS = (".jpg", ".JPG", ".jpeg", ".JPEG", ".png", ".PNG", ".ppm", ".PPM", ".bmp", ".BMP")
class Chunk:
    def __init__(self, path):
        self.path = path
        self.tiles = []
        for dirpath, _, names in sorted(os.walk(path)):
            for n in sorted(names):
                if n.endswith(EXTS) and "ref.jpg" not in n:
                    self.tiles.append(os.path.join(dirpath, n))
root, mode = sys.argv[1], sys.argv[2]
cache = os.path.join(root, ".dlas_style_cache.pth")
before = rss()
t = time.perf_counter()
if mode == "build":
    chunks = [Chunk(e.path) for e in sorted(os.scandir(root), key=lambda e: e.name) if e.is_dir()]
    chunks = [c for c in chunks if c.tiles]
    torch.save(chunks, cache)
else:
    chunks = torch.load(cache, weights_only=False)
secs = time.perf_counter() - t
print(json.dumps({"secs": secs, "tiles": sum(len(c.tiles) for c in chunks),
                  "from_cache": mode != "build", "heap": None, "rss_growth": rss() - before}))
"""
)


def make_tree(root: Path, chunks: int, tiles: int) -> None:
    import dlas_fast

    shape = f"{chunks}x{tiles}\n"
    stamp = root / ".bench_shape"
    if stamp.exists() and stamp.read_text() == shape:
        return
    print(f"making {chunks} chunks x {tiles} tiles under {root} (once)...", flush=True)
    root.mkdir(parents=True, exist_ok=True)
    for c in range(chunks):
        d = root / f"chunk_{c:06d}"
        d.mkdir(exist_ok=True)
        for t in range(1, tiles + 1):
            (d / f"{t:08d}.jpg").touch()
        (d / "ref.jpg").touch()
        entries = [(t, (t % 256, (t * 7) % 256), 64) for t in range(1, tiles + 1)]
        dlas_fast.write_centers(d / "centers.pt", entries)
    # Out of the index's racy window (folders modified within 2 s of a scan are rescanned).
    past = time.time() - 60
    for d in root.iterdir():
        os.utime(d, (past, past))
        if (d / "centers.pt").exists():
            os.utime(d / "centers.pt", (past, past))
    stamp.write_text(shape)


def run(code: str, *args: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", code, *args], check=True, capture_output=True, text=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def measure(name: str, code: str, args: tuple[str, ...], runs: int) -> dict:
    recs = [run(code, *args) for _ in range(runs)]
    secs = [r["secs"] for r in recs]
    tiles = recs[0]["tiles"]
    res = {
        "name": name,
        "min_s": min(secs),
        "median_s": statistics.median(secs),
        "tiles": tiles,
        "from_cache": recs[0]["from_cache"],
        "heap_bytes_per_tile": recs[0]["heap"] / tiles if recs[0]["heap"] is not None else None,
        "rss_bytes_per_tile": statistics.median(r["rss_growth"] for r in recs) / tiles,
    }
    heap = res["heap_bytes_per_tile"]
    print(
        f"{name:<22} min {res['min_s']:.3f} s  median {res['median_s']:.3f} s  "
        f"tiles {tiles}  heap B/tile {'-' if heap is None else f'{heap:.1f}'}  "
        f"RSS growth B/tile {res['rss_bytes_per_tile']:.1f}",
        flush=True,
    )
    return res


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--root", type=Path, default=Path("/tmp/dlas_index_bench"))
    p.add_argument("--chunks", type=int, default=10_000)
    p.add_argument("--tiles", type=int, default=100)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--dlas", action="store_true", help="also measure the DLAS-style index")
    p.add_argument("--json", type=Path, help="write the figures as JSON")
    args = p.parse_args()
    make_tree(args.root, args.chunks, args.tiles)
    root = str(args.root)
    print(f"command: {' '.join(sys.argv)}")
    results = [
        measure("ours: build", OURS, (root, "off"), args.runs),
        measure("ours: build+save", OURS, (root, "rebuild"), args.runs),
        measure("ours: start (cache)", OURS, (root, "use"), args.runs),
    ]
    if not results[-1]["from_cache"]:
        print("WARNING: the start runs did not use the cache", file=sys.stderr)
    if args.dlas:
        results.append(measure("dlas-style: build", DLAS, (root, "build"), args.runs))
        results.append(measure("dlas-style: start", DLAS, (root, "load"), args.runs))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
