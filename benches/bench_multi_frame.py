"""MultiFrameDataset benchmark: dlas_fast vs a DLAS-style OpenCV/numpy pipeline.

The data: "videos" made from the real-photo corpus (``benches/corpus.sh``):
from each of the first --videos photos, --frames frames that pan across it (a 1024x768
window moving 24 px right per frame), saved as ``<photo>_<12-digit counter>.jpg`` and
extracted with the default options (tiles of 256², refs, centres), made once under
--data.

Configuration: DLAS's own MultiFrameDataset example (its multi_frame_dataset.py):
``num_frames`` 10, ``target_size`` 128, ``force_multiple`` 32, ``scale`` 2, fixed
``jpeg-medium``. DataLoader batch 16, 2 worker processes (fork), shuffled with a fixed
seed, --batches batches after a warm-up; runs interleaved.

* ``ours, threaded``: no worker process, each batch in one native call on 2 threads;
* ``ours``: 2 workers and ``create_dataloader``'s collate;
* ``ours, hand-built``: 2 workers in ``torch.utils.data.DataLoader(ds, batch_size=16,
  num_workers=2, shuffle=True)`` with torch's default collate;
* ``dlas-style``: DLAS's per-frame logic in OpenCV/numpy, float32 (cv2.imdecode, area
  resizes, DLAS's corruptor: a PIL JPEG round trip with ``optimize=True`` read back
  with OpenCV), frames stacked with numpy, for the same items (our frame grouping gives
  both pipelines the same frames).

Run:
    python benches/bench_multi_frame.py [--batches 40] [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

import cv2
import dlas_fast
import numpy as np
import torch
from bench_loader import (
    DlasStyleCorruptor,
    hand_built,
    loader_samples_per_sec,
    read,
    samples_per_sec,
    warn_if_dev_build,
)
from dlas_fast.datasets.batch import collate

OPT = {
    "mode": "multi_frame_extensible",
    "num_frames": 10,
    "target_size": 128,
    "force_multiple": 32,
    "scale": 2,
    "fixed_corruptions": ["jpeg-medium"],
    "random_corruptions": [],
    "num_corrupts_per_image": 0,
}


class DlasStyleFrames(torch.utils.data.Dataset):
    """DLAS's MultiFrameDataset item logic in OpenCV/numpy, on the same frames."""

    def __init__(self, ours) -> None:
        self.items = [[spec[0] for spec in ours._tiles(i)] for i in range(len(ours))]
        self.target, self.scale = OPT["target_size"], OPT["scale"]
        self.corruptor = DlasStyleCorruptor(OPT)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict:
        hs, refs, masks, centres = [], [], [], []
        for path in self.items[i]:
            tile = read(path)
            hs.append(tile)
            refs.append(np.zeros_like(tile))
            masks.append(np.zeros(tile.shape[:2] + (1,)))
            centres.append((0, 0))
        size = (self.target, self.target)
        hs = [cv2.resize(h, size, interpolation=cv2.INTER_AREA) for h in hs]
        refs = [cv2.resize(r, size, interpolation=cv2.INTER_AREA) for r in refs]
        masks = [cv2.resize(m, size, interpolation=cv2.INTER_AREA) for m in masks]
        small = (self.target // self.scale,) * 2
        ls = [cv2.resize(h, small, interpolation=cv2.INTER_AREA) for h in hs]
        lrs = [cv2.resize(r, small, interpolation=cv2.INTER_AREA) for r in refs]
        lms = [cv2.resize(m, small, interpolation=cv2.INTER_AREA) for m in masks]
        ls = self.corruptor.corrupt_images(ls)

        def t(frames):
            return torch.from_numpy(np.ascontiguousarray(np.stack(frames).transpose(0, 3, 1, 2)))

        hq_ref = torch.cat([t(refs), torch.from_numpy(np.stack(masks)).unsqueeze(1)], 1)
        lq_ref = torch.cat([t(lrs), torch.from_numpy(np.stack(lms)).unsqueeze(1)], 1)
        return {"GT_path": self.items[i][-1], "lq": t(ls).float(), "hq": t(hs).float(),
                "gt_fullsize_ref": hq_ref.float(), "lq_fullsize_ref": lq_ref.float(),
                "lq_center": torch.tensor(centres), "gt_center": torch.tensor(centres)}  # fmt: skip


def ensure_data(photos: Path, data: Path, videos: int, frames: int) -> Path:
    if (data / "ds" / ".dlas_fast-report-1of1.json").exists():
        return data / "ds"
    src = data / "src"
    src.mkdir(parents=True, exist_ok=True)
    paths = sorted(p for p in photos.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    made = 0
    for p in paths:
        img = cv2.imread(str(p))
        if img is None or img.shape[0] < 768 or img.shape[1] < 1024 + 24 * frames:
            continue
        for f in range(frames):
            crop = img[:768, 24 * f : 24 * f + 1024]
            cv2.imwrite(str(src / f"{p.stem}_{f + 1:012d}.jpg"), crop,
                        [cv2.IMWRITE_JPEG_QUALITY, 95])  # fmt: skip
        made += 1
        if made == videos:
            break
    print(f"extracting {made} videos of {frames} frames into {data / 'ds'} (once)...")
    dlas_fast.extract(src, data / "ds", threads=os.cpu_count() or 2, overwrite=True)
    return data / "ds"


def main() -> int:
    cache = Path(os.environ.get("DLAS_FAST_CACHE", Path.home() / ".cache" / "dlas_fast"))
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--photos", type=Path, default=cache / "photos")
    p.add_argument("--data", type=Path, default=cache / "bench_multi_frame_data")
    p.add_argument("--videos", type=int, default=6)
    p.add_argument("--frames", type=int, default=16)
    p.add_argument("--batches", type=int, default=40)
    p.add_argument("--runs", type=int, default=3)
    args = p.parse_args()
    root = ensure_data(args.photos, args.data, args.videos, args.frames)
    print(f"command: {' '.join(sys.argv)}")
    warn_if_dev_build()
    ours = dlas_fast.create_dataset(dict(OPT, paths=str(root)))
    dlas = DlasStyleFrames(ours)
    print(f"{len(ours)} items of {OPT['num_frames']} frames")
    pipelines = (("ours, threaded", ours, collate, 0), ("ours", ours, collate, 2),
                 ("ours, hand-built", ours, hand_built, 2),
                 ("dlas-style", dlas, None, 2))  # fmt: skip
    figures: dict[str, list[float]] = {name: [] for name, *_ in pipelines}
    for run in range(args.runs):
        for name, ds, fn, workers in pipelines:
            if fn is hand_built:  # torch's DataLoader as training code builds it
                sps = loader_samples_per_sec(hand_built(ds, workers, 16), args.batches)
            else:
                sps = samples_per_sec(ds, args.batches, workers, 16, fn)
            figures[name].append(sps)
            print(f"run {run + 1} {name:<16} {sps:8.1f} items/s", flush=True)
    med = {k: statistics.median(v) for k, v in figures.items()}
    print("\n| pipeline | items/s (median) | max |\n|---|---:|---:|")
    for k, v in figures.items():
        print(f"| {k} | {med[k]:.0f} | {max(v):.0f} |")
    for k in ("ours, threaded", "ours", "ours, hand-built"):
        print(f"{k} / dlas-style: {med[k] / med['dlas-style']:.2f}x (medians)")
    print(f"hand-built / create_dataloader: {med['ours, hand-built'] / med['ours']:.2f}x (medians)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
