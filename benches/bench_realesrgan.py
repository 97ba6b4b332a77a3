"""Real-ESRGAN degradation benchmark: the native pipeline beside the reference on CPU,
and the share of a loader's time the degradation takes.

Part 1, the degradation alone, at 256x256 ground truth, x4, batches of 16, 2 cores:

* ``reference``: Real-ESRGAN's own code on CPU (``scripts/realesrgan_reference.py``:
  ``RealESRGANDataset.__getitem__``'s kernel draws for each item, torch's default
  collate, then ``RealESRGANModel.feed_data`` on the batch: BasicSR's USMSharp,
  filter2D, ``F.interpolate``, noise and DiffJPEG, the final crop and the training-pair
  pool), ``torch.set_num_threads(2)``;
* ``ours``: ``realesrgan_degrade`` on each of the 16 items, on 2 threads (it releases
  the GIL), the x4plus options.

The ground truths are 256x256 crops of the photo corpus (``benches/corpus.sh``). Runs
alternate between the two; each run times --batches batches after one warm-up batch.

Part 2, the share of a loader's time: ``single_image_extensible`` over the extracted
photo corpus (256x256 tiles; ``target_size`` 256, ``scale`` 4), with and without
``degradation: realesrgan``, in ``create_dataloader``'s loader and in a hand-built
``torch.utils.data.DataLoader`` (default collate), batch 16, 2 worker processes. The
share is ``1 - (samples/s with) / (samples/s without)``.

Needs the reference installed once: ``bash scripts/reference-env.sh``.

Run:
    python benches/bench_realesrgan.py [--batches 10] [--runs 3] [--loader-batches 60]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "scripts"))

import dlas_fast  # noqa: E402
from bench_loader import (  # noqa: E402
    create_dataloader_of,
    ensure_data,
    hand_built,
    loader_samples_per_sec,
    warn_if_dev_build,
)
from dlas_fast._native import realesrgan_degrade  # noqa: E402
from dlas_fast.corruptor import ImageCorruptor  # noqa: E402

GT = 256
SCALE = 4


def ground_truths(photos: Path, n: int) -> list[np.ndarray]:
    """`n` GT x GT crops (HWC float32 RGB in [0, 1]) spread over the photo corpus."""
    from PIL import Image

    files = sorted(p for p in photos.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    if not files:
        sys.exit(f"no photos in {photos}: make the corpus with benches/corpus.sh")
    out = []
    rng = np.random.default_rng(0)
    i = 0
    while len(out) < n:
        with Image.open(files[i % len(files)]) as im:
            img = np.asarray(im.convert("RGB"))
        i += 1
        h, w = img.shape[:2]
        if min(h, w) < GT:
            continue
        y, x = int(rng.integers(0, h - GT + 1)), int(rng.integers(0, w - GT + 1))
        out.append(np.ascontiguousarray(img[y : y + GT, x : x + GT], dtype=np.float32) / 255)
    return out


def bench_degradation(gts: list[np.ndarray], batches: int, runs: int, threads: int) -> None:
    import realesrgan_reference as ref

    torch.set_num_threads(threads)
    reference = ref.reference_batch_fn(ref.default_options(), batch_size=len(gts))
    tensors = [torch.from_numpy(g.transpose(2, 0, 1).copy()) for g in gts]
    ours = ImageCorruptor({"degradation": "realesrgan", "random_seed": 0}).native
    chws = [np.ascontiguousarray(g.transpose(2, 0, 1)) for g in gts]
    pool = ThreadPoolExecutor(threads)
    counter = iter(range(1 << 62))

    def run_ours() -> None:
        base = next(counter) * len(chws)
        list(pool.map(lambda a: realesrgan_degrade(ours, a[1], SCALE, 0, base + a[0]),
                      enumerate(chws)))  # fmt: skip

    def run_reference() -> None:
        reference(tensors)

    results: dict[str, list[float]] = {"reference": [], "ours": []}
    for fn in (run_reference, run_ours):  # warm-up
        fn()
    for _ in range(runs):
        for name, fn in (("reference", run_reference), ("ours", run_ours)):
            t = time.perf_counter()
            for _ in range(batches):
                fn()
            results[name].append(batches * len(gts) / (time.perf_counter() - t))
    pool.shutdown()
    r, o = (statistics.median(results[k]) for k in ("reference", "ours"))
    print(f"\n## The degradation alone: {GT}x{GT} GT, x{SCALE}, batch {len(gts)}, "
          f"{threads} threads, median of {runs} runs of {batches} batches\n")  # fmt: skip
    print("| pipeline | samples/s | runs |")
    print("|---|---:|---|")
    for name in ("reference", "ours"):
        runs_text = ", ".join(f"{v:.1f}" for v in results[name])
        print(f"| {name} | {statistics.median(results[name]):.1f} | {runs_text} |")
    print(f"\nours / reference: **{o / r:.1f}x**", flush=True)


def bench_share(data: Path, batches: int, runs: int, workers: int, batch_size: int) -> None:
    base = {"mode": "single_image_extensible", "paths": str(data), "target_size": GT,
            "scale": SCALE, "random_seed": 0, "phase": "train"}  # fmt: skip
    plain = dlas_fast.create_dataset(base)
    degraded = dlas_fast.create_dataset(dict(base, degradation="realesrgan"))
    loaders = {
        "create_dataloader": lambda ds: create_dataloader_of(ds, workers, batch_size),
        "hand-built DataLoader": lambda ds: hand_built(ds, workers, batch_size),
    }
    results: dict[tuple[str, str], list[float]] = {}
    for _ in range(runs):
        for lname, make in loaders.items():
            for dname, ds in (("plain", plain), ("degradation", degraded)):
                sps = loader_samples_per_sec(make(ds), batches)
                results.setdefault((lname, dname), []).append(sps)
    print(f"\n## Share of a loader's time: single_image_extensible, {GT}x{GT} tiles, "
          f"x{SCALE}, batch {batch_size}, {workers} workers, median of {runs} runs of "
          f"{batches} batches\n")  # fmt: skip
    print("| loader | plain samples/s | with degradation | degradation's share |")
    print("|---|---:|---:|---:|")
    for lname in loaders:
        p = statistics.median(results[(lname, "plain")])
        d = statistics.median(results[(lname, "degradation")])
        print(f"| {lname} | {p:.1f} | {d:.1f} | {1 - d / p:.0%} |")


def main() -> int:
    cache = Path(os.environ.get("DLAS_FAST_CACHE", Path.home() / ".cache" / "dlas_fast"))
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--photos", type=Path, default=cache / "photos")
    p.add_argument("--data", type=Path, default=cache / "bench_loader_data")
    p.add_argument("--batches", type=int, default=10)
    p.add_argument("--loader-batches", type=int, default=60)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--part", choices=["all", "degradation", "share"], default="all")
    args = p.parse_args()
    print(f"command: {' '.join(sys.argv)}")
    warn_if_dev_build()
    if args.part in ("all", "degradation"):
        gts = ground_truths(args.photos, args.batch_size)
        bench_degradation(gts, args.batches, args.runs, args.threads)
    if args.part in ("all", "share"):
        data = ensure_data(args.photos, args.data)
        bench_share(data, args.loader_batches, args.runs, args.threads, args.batch_size)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
