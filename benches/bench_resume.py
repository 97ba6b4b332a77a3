"""Benchmark of resuming a loader (docs/loading.md, "Resuming a run") at 1,000,000 items.

The dataset: a small chunked dataset (synthetic photos, extracted once under --root),
repeated by ``weights`` to at least --items items (``single_image_extensible``). The
loader: ``create_dataloader``, batch 16, no workers (the figures are of the calls, not
of loading), in the train phase.

Measured:

* ``state_dict()`` and ``load_state_dict(state)`` per call, mid-epoch (mean over many
  calls, best of --runs), and the state's size as JSON;
* the time to the first batch after ``load_state_dict`` of a state near the end of an
  epoch, against a fresh loader's first batch: the batches left out are not loaded.
  With ``create_dataloader``'s own shuffle (a slice of the permutation) and with torch's
  ``DistributedSampler`` (the loader drops index lists without loading them).

Run:
    python benches/bench_resume.py [--root /tmp/dlas_resume_bench] [--items 1000000]
                                   [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import dlas_fast
import numpy as np
from PIL import Image


def dataset_root(root: Path) -> Path:
    dst = root / "ds"
    if (dst / ".dlas_fast-complete").exists():
        return dst
    src = root / "src"
    src.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(4):
        y, x = np.mgrid[0:900, 0:1200]
        img = np.stack([(x * (i + 1)) % 256, (y * 2 + i * 40) % 256, (x + y) % 256], -1)
        img = (img + rng.integers(0, 20, img.shape)).clip(0, 255).astype(np.uint8)
        Image.fromarray(img).save(src / f"p{i}.jpg", quality=92)
    dlas_fast.extract(src, dst, threads=2)
    (dst / ".dlas_fast-complete").touch()
    return dst


def per_call(fn, calls: int, runs: int) -> float:
    """Best-of-runs mean seconds per call."""
    best = math.inf
    for _ in range(runs):
        t = time.perf_counter()
        for _ in range(calls):
            fn()
        best = min(best, (time.perf_counter() - t) / calls)
    return best


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--root", type=Path, default=Path("/tmp/dlas_resume_bench"))
    p.add_argument("--items", type=int, default=1_000_000)
    p.add_argument("--runs", type=int, default=5)
    args = p.parse_args()
    import torch

    root = dataset_root(args.root)
    tiles = len(dlas_fast.create_dataset({"mode": "single_image_extensible",
                                          "paths": str(root), "target_size": 64,
                                          "random_seed": 1}))  # fmt: skip
    weight = -(-args.items // tiles)
    opt = {"mode": "single_image_extensible", "paths": [str(root)], "weights": [weight],
           "target_size": 64, "scale": 2, "random_seed": 1, "batch_size": 16,
           "n_workers": 0}  # fmt: skip
    dataset = dlas_fast.create_dataset(opt)
    n = len(dataset)
    loader = dlas_fast.create_dataloader(dataset, opt)
    it = iter(loader)
    for _ in range(3):
        next(it)
    state = loader.state_dict()
    size = len(json.dumps(state))
    save = per_call(loader.state_dict, 10_000, args.runs)
    other = dlas_fast.create_dataloader(dlas_fast.create_dataset(opt), opt)
    load = per_call(lambda: other.load_state_dict(state), 2_000, args.runs)

    def first_batch(make_loader, batches: int | None) -> float:
        best = math.inf
        for _ in range(args.runs):
            ldr = make_loader()
            t = time.perf_counter()
            if batches is not None:
                ldr.load_state_dict({**ldr.state_dict(), "batches": batches})
            next(iter(ldr))
            best = min(best, time.perf_counter() - t)
        return best

    near_end = len(loader) - 10
    own = lambda: dlas_fast.create_dataloader(dataset, opt)  # noqa: E731
    first_batch(own, None)  # warm: every chunk's ref decoded once

    def dist():
        sampler = torch.utils.data.DistributedSampler(dataset, num_replicas=1, rank=0)
        return dlas_fast.create_dataloader(dataset, opt, sampler=sampler)

    rows = [
        ("create_dataloader's shuffle", first_batch(own, None), first_batch(own, near_end)),
        ("DistributedSampler", first_batch(dist, None), first_batch(dist, near_end)),
    ]
    print(f"{n:,} items ({tiles} tiles x weight {weight}), batch 16, {len(loader):,} batches "
          f"per epoch; best of {args.runs}\n")  # fmt: skip
    print("| call | time per call | state |")
    print("|---|---|---|")
    print(f"| `state_dict()` | {save * 1e6:.1f} µs | {size} bytes of JSON |")
    print(f"| `load_state_dict(state)` | {load * 1e6:.1f} µs | |")
    print()
    print(f"| sampler | first batch, fresh | first batch after resuming at batch "
          f"{near_end:,} |")  # fmt: skip
    print("|---|---|---|")
    for name, fresh, resumed in rows:
        print(f"| {name} | {fresh * 1e3:.1f} ms | {resumed * 1e3:.1f} ms |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
