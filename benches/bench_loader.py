"""Loading benchmark: SingleImageDataset in a DataLoader, dlas_fast vs a DLAS-style one.

The dataset: the real-photo corpus (``../shared/corpus/photos.sh``) extracted with the
default options (5,507 tiles of 256x256 with refs and centres), made once under --data.

Configuration ``plain`` (issue 3's (b)): ``target_size`` 256, ``scale`` 4, ``need_ref``,
no corruption. Each pipeline runs in a ``torch.utils.data.DataLoader`` with batch size
16, 2 worker processes (fork), shuffled with a fixed seed, for --batches batches after a
warm-up of 10 batches that also starts the workers; samples/s is measured in the main
process over the counted batches. Runs of the two pipelines are interleaved.

* ``ours, threaded``: ``dlas_fast.create_dataset(opt)`` in a DataLoader with no worker
  process: each batch is loaded in one native call on 2 threads (the same 2 cores);
* ``ours``: the same with 2 worker processes and the collate function
  ``dlas_fast.create_dataloader`` uses (whole batches decoded in one native call);
* ``ours, default collate``: the same dataset in a DataLoader with torch's default
  collate (a drop-in that changes nothing else: the batch is stacked a second time);
* ``ceiling: no work``: a dataset that returns zero tensors of the same shapes without
  doing anything, in the same DataLoader (2 workers, default collate): what moving the
  samples from the workers to the main process costs by itself;
* ``dlas-style``: DLAS's SingleImageDataset logic with OpenCV and numpy, float32
  throughout, as DLAS runs it: ``cv2.imread`` of the tile and of ``ref.jpg`` for every
  item, the mask built per item, ``cv2.resize(..., INTER_AREA)`` on float images, the
  tensors made with ``torch.from_numpy``. The chunk listing is built once up front.

Run:
    python benches/bench_loader.py [--photos DIR] [--data DIR] [--batches 150] [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import cv2
import dlas_fast
import numpy as np
import torch
from dlas_fast.datasets.batch import collate

OPT = {
    "mode": "single_image_extensible",
    "target_size": 256,
    "scale": 4,
    "need_ref": True,
    "force_multiple": 1,
}


class DlasStyle(torch.utils.data.Dataset):
    """DLAS's SingleImageDataset for the ``plain`` configuration, in OpenCV/numpy."""

    def __init__(self, root: str, target: int, scale: int) -> None:
        self.target, self.scale = target, scale
        self.tiles = []  # (tile path, chunk dir)
        for chunk in sorted(os.scandir(root), key=lambda e: e.name):
            if chunk.is_dir() and not chunk.name.startswith("."):
                for dirpath, _, names in sorted(os.walk(chunk.path)):
                    for n in sorted(names):
                        if n.endswith(".jpg") and "ref.jpg" not in n:
                            self.tiles.append((os.path.join(dirpath, n), chunk.path))

    def __len__(self) -> int:
        return len(self.tiles)

    @staticmethod
    def read(path: str) -> np.ndarray:
        img = cv2.imread(path, cv2.IMREAD_UNCHANGED).astype(np.float32) / 255.0
        return img[:, :, [2, 1, 0]]

    def __getitem__(self, i: int) -> dict:
        path, chunk = self.tiles[i]
        tile = self.read(path)
        ref = self.read(os.path.join(chunk, "ref.jpg"))
        centre, width = (128, 128), 256
        mask = np.full(tile.shape[:2] + (1,), 0.1, dtype=tile.dtype)
        mask[centre[0] - width // 2 : centre[0] + width // 2,
             centre[1] - width // 2 : centre[1] + width // 2] = 1  # fmt: skip
        h = tile.shape[0]
        size = (self.target, self.target)
        if h != self.target:
            tile, ref = (cv2.resize(a, size, interpolation=cv2.INTER_AREA) for a in (tile, ref))
            mask = cv2.resize(mask, size, interpolation=cv2.INTER_AREA)
            h = self.target
        else:
            mask = mask.squeeze(-1)
        small = (h // self.scale, h // self.scale)
        lq, lref, lmask = (cv2.resize(a, small, interpolation=cv2.INTER_AREA)
                           for a in (tile, ref, mask))  # fmt: skip

        def t(a):
            return torch.from_numpy(np.ascontiguousarray(np.transpose(a, (2, 0, 1)))).float()

        hq_ref = torch.cat([t(ref), torch.from_numpy(mask).unsqueeze(0)], 0)
        lq_ref = torch.cat([t(lref), torch.from_numpy(lmask).unsqueeze(0)], 0)
        return {"lq": t(lq), "hq": t(tile), "gt_fullsize_ref": hq_ref, "lq_fullsize_ref": lq_ref,
                "lq_center": torch.tensor([32, 32], dtype=torch.long),
                "gt_center": torch.tensor(centre, dtype=torch.long),
                "LQ_path": path, "GT_path": path}  # fmt: skip


class NoWork(torch.utils.data.Dataset):
    """Zero tensors shaped like the ``plain`` configuration's items."""

    def __init__(self, n: int, target: int, scale: int) -> None:
        self.n, self.t, self.s = n, target, scale

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict:
        t, s = self.t, self.t // self.s
        return {"lq": torch.zeros(3, s, s), "hq": torch.zeros(3, t, t),
                "gt_fullsize_ref": torch.zeros(4, t, t), "lq_fullsize_ref": torch.zeros(4, s, s),
                "lq_center": torch.zeros(2, dtype=torch.long),
                "gt_center": torch.zeros(2, dtype=torch.long),
                "LQ_path": "x", "GT_path": "x"}  # fmt: skip


def samples_per_sec(ds, batches: int, workers: int, batch_size: int, collate=None) -> float:
    g = torch.Generator().manual_seed(0)
    loader = torch.utils.data.DataLoader(
        ds, batch_size=batch_size, shuffle=True, num_workers=workers, generator=g,
        drop_last=True, multiprocessing_context="fork" if workers else None,
        collate_fn=collate,
    )  # fmt: skip
    it = iter(loader)
    for _ in range(10):  # warm-up: starts the workers
        next(it)
    n = 0
    t = time.perf_counter()
    for _ in range(batches):
        n += len(next(it)["GT_path"])
    secs = time.perf_counter() - t
    del it
    return n / secs


def ensure_data(photos: Path, data: Path) -> Path:
    if not (data / ".dlas_fast-report-1of1.json").exists():
        print(f"extracting {photos} into {data} (once)...", flush=True)
        s = dlas_fast.extract(photos, data, threads=os.cpu_count() or 2, overwrite=True)
        print(f"  {s.tiles_written} tiles", flush=True)
    return data


def main() -> int:
    cache = Path(os.environ.get("DLAS_FAST_CACHE", Path.home() / ".cache" / "dlas_fast"))
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--photos", type=Path, default=cache / "photos")
    p.add_argument("--data", type=Path, default=cache / "bench_loader_data")
    p.add_argument("--batches", type=int, default=150)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=16)
    args = p.parse_args()
    data = ensure_data(args.photos, args.data)
    print(f"command: {' '.join(sys.argv)}")
    ours = dlas_fast.create_dataset(dict(OPT, paths=str(data)))
    dlas = DlasStyle(str(data), OPT["target_size"], OPT["scale"])
    assert len(ours) == len(dlas), (len(ours), len(dlas))
    figures: dict[str, list[float]] = {
        "ours, threaded": [],
        "ours": [],
        "ours, default collate": [],
        "ceiling: no work": [],
        "dlas-style": [],
    }
    pipelines = (
        ("ours, threaded", ours, collate),
        ("ours", ours, collate),
        ("ours, default collate", ours, None),
        ("ceiling: no work", NoWork(len(ours), OPT["target_size"], OPT["scale"]), None),
        ("dlas-style", dlas, None),
    )
    for run in range(args.runs):
        for name, ds, fn in pipelines:
            workers = 0 if name == "ours, threaded" else args.workers
            sps = samples_per_sec(ds, args.batches, workers, args.batch_size, fn)
            figures[name].append(sps)
            print(f"run {run + 1} {name:<22} {sps:8.1f} samples/s", flush=True)
    med = {k: statistics.median(v) for k, v in figures.items()}
    print("\n| pipeline | samples/s (median) | max |\n|---|---:|---:|")
    for k, v in figures.items():
        print(f"| {k} | {med[k]:.0f} | {max(v):.0f} |")
    for k in ("ours, threaded", "ours", "ours, default collate", "ceiling: no work"):
        print(f"{k} / dlas-style: {med[k] / med['dlas-style']:.2f}x (medians)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
