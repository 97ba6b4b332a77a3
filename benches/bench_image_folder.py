"""ImageFolderDataset benchmark: dlas_fast vs a DLAS-style OpenCV/numpy pipeline.

The data: the real-photo corpus (``benches/corpus.sh``) extracted with the
default options (5,507 tiles of 256x256 in chunk folders; each ``ref.jpg`` is left out
of the listing), made once under --data (shared with bench_loader.py). An image folder
of 256² images is what DLAS's own ImageFolderDataset example reads.

Two configurations:

* ``a``: DLAS's own example (its image_folder_dataset.py): ``target_size`` 256,
  ``scale`` 1, ``corrupt_before_downsize``, ``fetch_alt_tiled_image``, ``disable_flip``,
  fixed ``lq_resampling``, ``jpeg-medium``, ``gaussian_blur``, ``noise``, ``color_jitter``,
  ``all_image_color_jitter`` 0.1;
* ``b`` (super-resolution): ``target_size`` 128, ``scale`` 4, random flips, fixed
  ``jpeg-broad`` + ``gaussian_blur`` on the LQ image, ``normalize`` imagenet.

Each pipeline runs in a ``torch.utils.data.DataLoader`` with batch size 16, shuffled
with a fixed seed, for --batches batches after a warm-up of 10; runs interleaved.

* ``ours, threaded``: no worker process, each batch in one native call on 2 threads;
* ``ours``: ``dlas_fast.create_dataloader``'s loader, 2 worker processes (fork);
* ``ours, hand-built``: ``torch.utils.data.DataLoader(ds, batch_size=16, num_workers=2,
  shuffle=True)`` with torch's default collate, as most training code builds it;
  ``hand-built / create_dataloader`` is its share of ``ours`` (both shuffled from
  torch's global generator, seeded alike: the same batches);
* ``ceiling: no work``: a dataset that returns zero tensors of the same shapes without
  doing anything, 2 workers and torch's default collate: what moving the samples from
  the workers to the main process costs by itself;
* ``dlas-style``: DLAS's ImageFolderDataset item logic in OpenCV/numpy, float32, 2
  worker processes and torch's default collate: ``cv2.imdecode``, the square crop and
  flip as numpy views, the colour jitter (kornia's ColorJitter in OpenCV: brightness,
  contrast, saturation, and hue through HSV), ``cv2.resize(INTER_AREA)``, DLAS's
  corruptor (PIL JPEG with ``optimize=True`` read back with OpenCV,
  ``cv2.GaussianBlur``, float64 numpy noise, OpenCV resampling), normalisation with
  torch. For the alt tile it reads one other tile of the folder (DLAS's loop reads
  every tile of the folder and keeps the last; that is not counted against it).

Run:
    python benches/bench_image_folder.py [--config a b] [--batches 100] [--runs 3]
"""

from __future__ import annotations

import os
import random
import statistics
from functools import partial

import cv2
import dlas_fast
import numpy as np
import torch
from bench_loader import (
    DlasStyleCorruptor,
    color_jitter,
    create_dataloader_of,
    hand_built,
    loader_samples_per_sec,
    parse_args,
    read,
    seeded_loader,
)
from dlas_fast.datasets.batch import collate

CONFIGS = {
    "a": {
        "mode": "imagefolder",
        "target_size": 256,
        "scale": 1,
        "corrupt_before_downsize": True,
        "fetch_alt_image": False,
        "fetch_alt_tiled_image": True,
        "disable_flip": True,
        "fixed_corruptions": [
            "lq_resampling",
            "jpeg-medium",
            "gaussian_blur",
            "noise",
            "color_jitter",
        ],  # fmt: skip
        "num_corrupts_per_image": 0,
        "corruption_blur_scale": 1,
        "all_image_color_jitter": 0.1,
    },
    "b": {
        "mode": "imagefolder",
        "target_size": 128,
        "scale": 4,
        "fixed_corruptions": ["jpeg-broad", "gaussian_blur"],
        "normalize": "imagenet",
    },
}

IMAGENET = (torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1),
            torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1))  # fmt: skip


class NoWorkFolder(torch.utils.data.Dataset):
    """Zero tensors shaped like a configuration's items."""

    def __init__(self, n: int, opt: dict) -> None:
        self.n, self.opt = n, opt

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict:
        t = self.opt["target_size"]
        s = t // self.opt["scale"]
        out = {"hq": torch.zeros(3, t, t), "lq": torch.zeros(3, s, s), "has_alt": False,
               "corruption_entropy": torch.zeros(len(self.opt["fixed_corruptions"])),
               "LQ_path": "x", "HQ_path": "x"}  # fmt: skip
        if self.opt.get("fetch_alt_tiled_image"):
            out["alt_hq"] = torch.zeros(3, t, t)
        return out


class DlasStyleFolder(torch.utils.data.Dataset):
    """DLAS's ImageFolderDataset for these configurations, in OpenCV/numpy."""

    def __init__(self, paths: list[str], opt: dict) -> None:
        self.paths = paths
        self.opt = opt
        self.by_dir: dict[str, list[str]] = {}
        for p in paths:
            self.by_dir.setdefault(os.path.dirname(p), []).append(p)
        self.corruptor = DlasStyleCorruptor(opt)
        self.rand = random.Random()

    def __len__(self) -> int:
        return len(self.paths)

    def resize_hq(self, img: np.ndarray) -> np.ndarray:
        t = self.opt["target_size"]
        if img.shape[0] != t:
            img = cv2.resize(img, (t, t), interpolation=cv2.INTER_AREA)
        return img

    def __getitem__(self, i: int) -> dict:
        opt = self.opt
        path = self.paths[i]
        hq = read(path)
        if not opt.get("disable_flip", False) and random.random() < 0.5:
            hq = hq[:, ::-1, :]
        h, w, _ = hq.shape
        d = min(h, w)
        hq = hq[(h - d) // 2 : (h - d) // 2 + d, (w - d) // 2 : (w - d) // 2 + d, :]
        if opt.get("all_image_color_jitter", 0) > 0:
            hq = color_jitter(np.ascontiguousarray(hq), opt["all_image_color_jitter"], self.rand)
        hq = self.resize_hq(np.ascontiguousarray(hq))
        out = {"hq": torch.from_numpy(np.ascontiguousarray(hq.transpose(2, 0, 1))).float(),
               "LQ_path": path, "HQ_path": path, "has_alt": False}  # fmt: skip
        if opt.get("fetch_alt_tiled_image"):
            others = [p for p in self.by_dir[os.path.dirname(path)] if p != path]
            alt = self.resize_hq(read(random.choice(others))) if others else hq
            out["alt_hq"] = torch.from_numpy(np.ascontiguousarray(alt.transpose(2, 0, 1)))
            out["has_alt"] = True
        s = opt["scale"]
        src = hq.copy()
        if opt.get("corrupt_before_downsize"):
            src = self.corruptor.corrupt_images([src])[0]
        lq = cv2.resize(src, (src.shape[1] // s, src.shape[0] // s), interpolation=cv2.INTER_AREA)
        if not opt.get("corrupt_before_downsize"):
            lq = self.corruptor.corrupt_images([lq])[0]
        out["lq"] = torch.from_numpy(np.ascontiguousarray(lq.transpose(2, 0, 1))).float()
        out["corruption_entropy"] = torch.zeros(len(opt["fixed_corruptions"]))
        if opt.get("normalize") == "imagenet":
            for k in ("hq", "lq"):
                out[k] = (out[k] - IMAGENET[0]) / IMAGENET[1]
        return out


def main() -> int:
    args, data = parse_args(__doc__, CONFIGS, 100)
    for name in args.config:
        opt = CONFIGS[name]
        ours = dlas_fast.create_dataset(dict(opt, paths=str(data)))
        dlas = DlasStyleFolder(ours.get_paths(), opt)
        nowork = NoWorkFolder(len(ours), opt)
        w, bs = args.workers, args.batch_size
        pipelines = (
            ("ours, threaded", partial(seeded_loader, ours, 0, bs, collate)),
            ("ours", partial(create_dataloader_of, ours, w, bs)),
            ("ours, hand-built", partial(hand_built, ours, w, bs)),
            ("ceiling: no work", partial(seeded_loader, nowork, w, bs)),
            ("dlas-style", partial(seeded_loader, dlas, w, bs)),
        )
        figures: dict[str, list[float]] = {n: [] for n, _ in pipelines}
        for _ in range(args.runs):
            for label, make in pipelines:
                figures[label].append(loader_samples_per_sec(make(), args.batches))
        base = statistics.median(figures["dlas-style"])
        print(f"\nconfiguration {name} ({len(ours)} images, batch {args.batch_size}):")
        for label, values in figures.items():
            med = statistics.median(values)
            print(f"  {label:16s} {med:8.0f} samples/s  {med / base:5.2f}x  "
                  f"(runs: {', '.join(f'{v:.0f}' for v in values)})")  # fmt: skip
        ratio = statistics.median(figures["ours, hand-built"]) / statistics.median(figures["ours"])
        print(f"  hand-built / create_dataloader: {ratio:.2f}x (medians)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
