"""Worker memory over a long epoch: does a DataLoader worker's resident set grow?

PyTorch warns that a Dataset holding its index in Python lists or dicts makes every
forked worker copy those objects page by page as it reads them (reference counts are
writes). dlas_fast keeps the index in native memory. This measures it: a tree of
CHUNKS x TILES tiles (default 1,000,000) whose tiles are hard links to one real 256x256
JPEG (to a few identical copies of it: ext4 allows 65,000 links per file; plus one ref.jpg
and one centers.pt, also hard-linked), loaded with
SingleImageDataset (need_ref, strict) in a DataLoader with 2 forked workers, batch 16,
shuffled, for SAMPLES samples (default 100,000). Each worker's RSS (VmRSS) is read at
every batch; a batch or two of ~30 MB in flight moves it by several percent, so the figure
compared is the median over batches 20-60 against the median over the last 40 batches.

Run:
    python benches/bench_worker_rss.py [--root /tmp/dlas_rss_bench] [--samples 100000]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import dlas_fast


def rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def make_tree(root: Path, chunks: int, tiles: int, photos: Path) -> None:
    shape = f"{chunks}x{tiles}\n"
    stamp = root / ".bench_shape"
    if stamp.exists() and stamp.read_text() == shape:
        return
    print(f"making {chunks} x {tiles} hard-linked tiles under {root} (once)...", flush=True)
    seed = root / ".seed"
    dlas_fast.extract(photos, seed, threads=os.cpu_count() or 2, overwrite=True)
    chunk0 = sorted(p for p in seed.iterdir() if not p.name.startswith("."))[0]
    ref = chunk0 / "ref.jpg"
    # ext4 allows 65,000 links per file: one copy of the tile per 60,000 links.
    copies = []
    for k in range(chunks * tiles // 60_000 + 1):
        copy = root / f".tile_{k}.jpg"
        if not copy.exists():
            copy.write_bytes((chunk0 / "00000001.jpg").read_bytes())
        copies.append(copy)
    centers = root / ".centers.pt"
    dlas_fast.write_centers(centers, [(t, (128, 128), 64) for t in range(1, tiles + 1)])
    for c in range(chunks):
        d = root / f"chunk_{c:06d}"
        d.mkdir(parents=True, exist_ok=True)
        for t in range(1, tiles + 1):
            p = d / f"{t:08d}.jpg"
            if not p.exists():
                os.link(copies[(c * tiles + t) // 60_000], p)
        for name, src in (("ref.jpg", ref), ("centers.pt", centers)):
            if not (d / name).exists():
                os.link(src, d / name)
    past = time.time() - 60
    for d in root.iterdir():
        if d.is_dir() and not d.name.startswith("."):
            os.utime(d, (past, past))
    stamp.write_text(shape)


def main() -> int:
    cache = Path(os.environ.get("DLAS_FAST_CACHE", Path.home() / ".cache" / "dlas_fast"))
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--root", type=Path, default=Path("/tmp/dlas_rss_bench"))
    p.add_argument("--photos", type=Path, default=cache / "photos")
    p.add_argument("--chunks", type=int, default=10_000)
    p.add_argument("--tiles", type=int, default=100)
    p.add_argument("--samples", type=int, default=100_000)
    args = p.parse_args()
    make_tree(args.root, args.chunks, args.tiles, args.photos)
    print(f"command: {' '.join(sys.argv)}", flush=True)
    opt = {"mode": "single_image_extensible", "paths": str(args.root), "need_ref": True,
           "strict": True, "target_size": 256, "scale": 4, "phase": "train",
           "batch_size": 16, "n_workers": 2}  # fmt: skip
    ds = dlas_fast.create_dataset(opt)
    print(f"{len(ds)} tiles; index {ds.tiles.resident_bytes / len(ds):.1f} bytes/tile", flush=True)
    loader = dlas_fast.create_dataloader(ds, opt)
    it = iter(loader)
    seen, batches = 0, 0
    total = args.samples // 16
    readings: dict[int, list[tuple[int, int]]] = {}
    t0 = time.perf_counter()
    while batches < total:
        seen += len(next(it)["GT_path"])
        batches += 1
        if 20 <= batches < 60 or batches > total - 40:
            for w in it._workers:
                readings.setdefault(w.pid, []).append((batches, rss(w.pid)))
    secs = time.perf_counter() - t0
    print(f"{seen} samples in {secs:.0f} s ({seen / secs:.0f} samples/s)")
    for pid, rs in readings.items():
        before = statistics.median(r for b, r in rs if b < 60)
        after = statistics.median(r for b, r in rs if b > total - 40)
        growth = (after - before) / before * 100
        print(
            f"worker {pid}: median RSS {before / 2**20:.1f} MiB over batches 20-60, "
            f"{after / 2**20:.1f} MiB over the last 40 of {batches}: {growth:+.1f} %"
        )
    del it
    return 0


if __name__ == "__main__":
    sys.exit(main())
