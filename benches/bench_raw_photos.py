"""Datasets over raw photos: dlas_fast vs DLAS-style pipelines, side by side.

The data: the photo corpus (``benches/corpus.sh``; --photos), not extracted, each
photo seen --copies times (hard links in folders ``00``, ``01``... next to the
corpus), as a user points a dataset at a folder of photos. Three datasets:

* ``imagefolder``: DLAS's own ImageFolderDataset example (configuration ``a`` of
  bench_image_folder.py: ``target_size`` 256, its fixed corruptions, the alt tile);
  DLAS-style: that benchmark's OpenCV/numpy pipeline;
* ``stylegan2``: ``target_size`` 256, ``aug_prob`` 0; DLAS-style: DLAS's own
  torchvision transforms on PIL (convert RGB, Resize, CenterCrop, ToTensor);
* ``multiscale``: ``hq_tile_size`` 32, ``num_scales`` 3 (a 256² square, 21 patches),
  ``scale`` 2; DLAS-style: ``cv2.imread``, the random flips and transpose, the square
  crop, ``cv2.resize(INTER_AREA)`` to the square, and DLAS's recursive patch tree,
  each patch shrunk with ``cv2.resize(INTER_AREA)``.

Pipelines, each a DataLoader with batch size 16 and 2 fork workers, shuffled with a
fixed seed, measured over --batches batches after 10 of warm-up, runs interleaved:
``ours`` (``create_dataloader``), ``ours, hand-built`` (torch's DataLoader with its
default collate), ``ours, exact_decode`` (``create_dataloader``, every photo decoded
at full size as DLAS does), ``dlas-style``.

It also prints, per file type of --photos, what one item costs in one process
(``ours``, default options): with ``benches/corpus.sh --png`` photos, the share of
the PNGs.

Run:
    python benches/bench_raw_photos.py [--dataset imagefolder stylegan2 multiscale]
        [--photos DIR] [--copies 20] [--batches 30] [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from functools import partial
from pathlib import Path

import cv2
import dlas_fast
import numpy as np
import torch
from bench_image_folder import CONFIGS as FOLDER_CONFIGS
from bench_image_folder import DlasStyleFolder
from bench_loader import (
    create_dataloader_of,
    hand_built,
    loader_samples_per_sec,
    read,
    seeded_loader,
    warn_if_dev_build,
)

CACHE = Path(os.environ.get("DLAS_FAST_CACHE", Path.home() / ".cache" / "dlas_fast"))


def options(name: str, data: Path) -> dict:
    if name == "imagefolder":
        return dict(FOLDER_CONFIGS["a"], paths=str(data))
    if name == "stylegan2":
        return {"mode": "stylegan2", "path": str(data), "target_size": 256, "aug_prob": 0}
    return {"mode": "multiscale", "paths": [str(data)], "hq_tile_size": 32, "num_scales": 3,
            "scale": 2}  # fmt: skip


class DlasStyleStylegan2(torch.utils.data.Dataset):
    """DLAS's Stylegan2Dataset transforms: torchvision on PIL."""

    def __init__(self, paths: list[str], size: int) -> None:
        import torchvision.transforms as T
        from PIL import Image

        self.paths, self.open = paths, Image.open
        self.transform = T.Compose([T.Lambda(lambda im: im.convert("RGB")), T.Resize(size),
                                    T.CenterCrop(size), T.ToTensor()])  # fmt: skip

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> dict:
        img = self.transform(self.open(self.paths[i]))
        return {"lq": img, "hq": img, "GT_path": self.paths[i]}


class DlasStyleMultiScale(torch.utils.data.Dataset):
    """DLAS's MultiScaleDataset without corruptions, in OpenCV/numpy."""

    def __init__(self, paths: list[str], tile: int, scales: int, scale: int) -> None:
        self.paths, self.t, self.n, self.s = paths, tile, scales, scale

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> dict:
        img = read(self.paths[i])
        if random.random() < 0.5:
            img = img[:, ::-1]
        if random.random() < 0.5:
            img = img[::-1]
        if random.random() < 0.5:
            img = img.transpose(1, 0, 2)
        h, w = img.shape[:2]
        d, slack = min(h, w), abs(h - w)
        c = slack // 2
        off = min(max(int(c + np.clip(random.gauss(0, 0.3), -1, 1) * (c - 2)), 0), slack)
        sq = img[off : off + d] if h > w else img[:, off : off + d]
        cap = self.t << self.n
        full = cv2.resize(np.ascontiguousarray(sq), (cap, cap), interpolation=cv2.INTER_AREA)
        t = self.t
        patches = [cv2.resize(full, (t, t), interpolation=cv2.INTER_AREA)]

        def rec(x: np.ndarray, depth: int) -> None:
            if depth >= self.n:
                return
            s = cap >> depth
            quads = [x[:s, :s], x[:s, s:], x[s:, :s], x[s:, s:]]
            patches.extend(cv2.resize(np.ascontiguousarray(q), (t, t),
                                      interpolation=cv2.INTER_AREA) for q in quads)  # fmt: skip
            for q in quads:
                rec(q, depth + 1)

        rec(full, 1)
        lq = [cv2.resize(p, (t // self.s, t // self.s), interpolation=cv2.INTER_AREA)
              for p in patches]  # fmt: skip
        return {"lq": torch.from_numpy(np.stack(lq).transpose(0, 3, 1, 2).copy()),
                "hq": torch.from_numpy(np.stack(patches).transpose(0, 3, 1, 2).copy()),
                "GT_path": self.paths[i]}  # fmt: skip


def dlas_style(name: str, ours) -> torch.utils.data.Dataset:
    paths = ours.get_paths()
    if name == "imagefolder":
        return DlasStyleFolder(paths, FOLDER_CONFIGS["a"])
    if name == "stylegan2":
        return DlasStyleStylegan2(paths, 256)
    return DlasStyleMultiScale(paths, 32, 3, 2)


def copies(photos: Path, n: int) -> Path:
    """``n`` copies of the photos as hard links (folders 00, 01...), made once."""
    root = photos.with_name(f"{photos.name}_x{n}")
    names = sorted(p.name for p in photos.iterdir() if p.is_file())
    for k in range(n):
        folder = root / f"{k:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        for name in names:
            dst = folder / name
            if not dst.exists():
                try:
                    os.link(photos / name, dst)
                except OSError:
                    dst.write_bytes((photos / name).read_bytes())
    return root


def per_type_costs(name: str, photos: Path) -> None:
    """Seconds per item of each file type, in one process (threads 1), ours."""
    ds = dlas_fast.create_dataset(options(name, photos))
    by_type: dict[str, list[float]] = {}
    for i, path in enumerate(ds.get_paths()):
        start = time.perf_counter()
        ds[i]
        by_type.setdefault(Path(path).suffix.lower(), []).append(time.perf_counter() - start)
    total = sum(sum(v) for v in by_type.values())
    for ext, times in sorted(by_type.items()):
        print(f"    {ext:6s} {len(times):3d} files  {1000 * statistics.mean(times):7.1f} ms/item  "
              f"{100 * sum(times) / total:5.1f}% of the time")  # fmt: skip


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    names = ["imagefolder", "stylegan2", "multiscale"]
    p.add_argument("--dataset", nargs="+", choices=names, default=names)
    p.add_argument("--photos", type=Path, default=CACHE / "photos")
    p.add_argument("--copies", type=int, default=20)
    p.add_argument("--batches", type=int, default=30)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=16)
    args = p.parse_args()
    if not args.photos.is_dir():
        sys.exit(f"--photos: {args.photos} is not a folder (make it with benches/corpus.sh)")
    print(f"command: {' '.join(sys.argv)}")
    warn_if_dev_build()
    data = copies(args.photos, args.copies)
    w, bs = args.workers, args.batch_size
    for name in args.dataset:
        opt = options(name, data)
        ours = dlas_fast.create_dataset(opt)
        exact = dlas_fast.create_dataset(dict(opt, exact_decode=True))
        pipelines = (
            ("ours", partial(create_dataloader_of, ours, w, bs)),
            ("ours, hand-built", partial(hand_built, ours, w, bs)),
            ("ours, exact_decode", partial(create_dataloader_of, exact, w, bs)),
            ("dlas-style", partial(seeded_loader, dlas_style(name, ours), w, bs)),
        )
        figures: dict[str, list[float]] = {label: [] for label, _ in pipelines}
        for _ in range(args.runs):
            for label, make in pipelines:
                figures[label].append(loader_samples_per_sec(make(), args.batches))
        base = statistics.median(figures["dlas-style"])
        n_photos = len(ours) // args.copies
        print(f"\n{name} ({n_photos} photos x {args.copies}, batch {bs}, {w} workers):")
        for label, values in figures.items():
            med = statistics.median(values)
            print(f"  {label:20s} {med:7.1f} samples/s  {med / base:5.2f}x  "
                  f"(runs: {', '.join(f'{v:.1f}' for v in values)})")  # fmt: skip
        print("  one process, per file type:")
        per_type_costs(name, args.photos)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
