"""Loading benchmark: SingleImageDataset in a DataLoader, dlas_fast vs a DLAS-style one.

The dataset: the real-photo corpus (``benches/corpus.sh``) extracted with the
default options (5,507 tiles of 256x256 with refs and centres), made once under --data.

Two configurations:

* ``a``: DLAS's own example (its single_image_dataset.py): ``target_size`` 128,
  ``force_multiple`` 32, ``scale`` 2, fixed ``jpeg-broad`` + ``gaussian_blur``, one of
  ``noise-5`` / ``none`` drawn per image, ``corrupt_before_downsize``; no ref;
* ``b`` (plain): ``target_size`` 256, ``scale`` 4, ``need_ref``, no corruption.

Each pipeline runs in a ``torch.utils.data.DataLoader`` with batch size 16, 2 worker
processes (fork), shuffled with a fixed seed, for --batches batches after a warm-up of
10 batches that also starts the workers; samples/s is measured in the main process over
the counted batches. Runs of the pipelines are interleaved.

* ``ours, threaded``: ``dlas_fast.create_dataset(opt)`` in a DataLoader with no worker
  process: each batch is loaded in one native call on 2 threads (the same 2 cores);
* ``ours``: the same dataset in ``dlas_fast.create_dataloader``'s loader with 2 worker
  processes (whole batches decoded in one native call, passed on by its collate);
* ``ours, hand-built``: the same dataset in the loader most training code builds,
  ``torch.utils.data.DataLoader(ds, batch_size=16, num_workers=2, shuffle=True)``, with
  torch's default collate; ``hand-built / create_dataloader`` is its share of ``ours``.
  Both draw their shuffle from torch's global generator, seeded alike, so they load the
  same batches;
* ``ceiling: no work``: a dataset that returns zero tensors of the same shapes without
  doing anything, in the same DataLoader (2 workers, default collate): what moving the
  samples from the workers to the main process costs by itself;
* ``dlas-style``: DLAS's SingleImageDataset logic with OpenCV and numpy, float32
  throughout, as DLAS runs it: ``cv2.imdecode`` of the tile (and of ``ref.jpg`` for
  every item when the configuration has refs), the mask built per item,
  ``cv2.resize(..., INTER_AREA)`` on float images, DLAS's corruptor (``random`` picks,
  a PIL JPEG round trip with ``optimize=True`` read back with OpenCV,
  ``cv2.GaussianBlur``, float64 numpy noise), the tensors made with
  ``torch.from_numpy``. The chunk listing is built once up front;
* ``decode floor``: no DataLoader: the same number of tiles (and refs, when the
  configuration has them), in the same order, read and decoded with ``cv2.imdecode``
  (libjpeg-turbo) on 2 threads, nothing else. ``ours / decode floor`` is the share of
  the decoding speed the whole pipeline keeps.

Run:
    python benches/bench_loader.py [--config a b] [--photos DIR] [--data DIR]
                                   [--batches 150] [--runs 3]
"""

from __future__ import annotations

import argparse
import io
import os
import random
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from math import cos, pi
from pathlib import Path

import cv2
import dlas_fast
import numpy as np
import torch
from dlas_fast.datasets.batch import collate
from PIL import Image

CONFIGS = {
    "a": {
        "mode": "single_image_extensible",
        "target_size": 128,
        "force_multiple": 32,
        "scale": 2,
        "fixed_corruptions": ["jpeg-broad", "gaussian_blur"],
        "random_corruptions": ["noise-5", "none"],
        "num_corrupts_per_image": 1,
        "corrupt_before_downsize": True,
    },
    "b": {
        "mode": "single_image_extensible",
        "target_size": 256,
        "scale": 4,
        "need_ref": True,
        "force_multiple": 1,
    },
}

JPEG_RANGES = {"jpeg": (10, 20), "jpeg-low": (15, 10), "jpeg-medium": (23, 25),
               "jpeg-broad": (15, 60), "jpeg-normal": (47, 35)}  # fmt: skip


def read(path: str) -> np.ndarray:
    """DLAS's read_img: imdecode, float32 / 255, BGR -> RGB."""
    with open(path, "rb") as f:
        data = np.frombuffer(f.read(), np.uint8)
    img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED).astype(np.float32) / 255.0
    if img.ndim == 2:  # DLAS fails on greyscale photos; here they get 3 channels
        return cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
    return cv2.cvtColor(img[:, :, :3], cv2.COLOR_BGR2RGB)


class DlasStyleCorruptor:
    """DLAS's ImageCorruptor for the names configuration ``a`` uses, as DLAS runs it."""

    def __init__(self, opt: dict) -> None:
        self.fixed = opt.get("fixed_corruptions", [])
        self.num = opt.get("num_corrupts_per_image", 0)
        self.random = opt.get("random_corruptions", [])
        self.rand = random.Random()

    def strength(self) -> float:
        return 1 - cos(self.rand.random() * pi / 2)

    def corrupt_images(self, imgs):
        picks = random.choices(self.random, k=self.num) if self.num else []
        applied = picks + self.fixed
        out = []
        for img in imgs:
            for name in picks + self.fixed:
                img = self.apply(img, name, self.strength(), applied)
            out.append(img)
        return out

    def apply(self, img, name, r, applied):
        if name == "gaussian_blur":
            return cv2.GaussianBlur(img, (0, 0), r * 1.5)
        if name == "noise-5":
            img += np.random.rand(*img.shape) * (5 / 255.0)
            return img
        if name in JPEG_RANGES:
            if "noise" in applied or "noise-5" in applied:
                return img
            lo, span = JPEG_RANGES[name]
            buf = io.BytesIO()
            q = int((1 - r) * span) + lo
            Image.fromarray((img * 255).astype(np.uint8)).save(buf, "JPEG", quality=q,
                                                               optimize=True)  # fmt: skip
            data = np.frombuffer(buf.getvalue(), np.uint8)
            back = cv2.imdecode(data, cv2.IMREAD_UNCHANGED).astype(np.float32) / 255.0
            return cv2.cvtColor(back, cv2.COLOR_BGR2RGB)
        if name == "noise":
            img += np.random.rand(*img.shape) * (r * 6 / 255.0)
            return img
        if name == "lq_resampling":
            scale = 1 if r < 0.3 else 2 if r < 0.7 else 4
            if scale == 1:
                return img
            mode = [cv2.INTER_NEAREST, cv2.INTER_CUBIC, cv2.INTER_LINEAR,
                    cv2.INTER_LANCZOS4][random.randint(0, 4) % 4]  # fmt: skip
            h, w = img.shape[:2]
            small = cv2.resize(img, (w // scale, h // scale), interpolation=mode)
            return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
        if name == "color_jitter":
            return color_jitter(img, r * 0.2, self.rand)
        if name == "none":
            return img
        raise NotImplementedError(name)


def color_jitter(img: np.ndarray, s: float, rand: random.Random) -> np.ndarray:
    """kornia's ColorJitter(s, s, s, s) as DLAS calls it, in OpenCV/numpy: brightness,
    contrast, saturation and hue factors in a random order."""
    if s * 255 <= 1:
        return img
    fb, fc, fs = (rand.uniform(max(0.0, 1 - s), 1 + s) for _ in range(3))
    fh = rand.uniform(-s, s)
    order = [0, 1, 2, 3]
    rand.shuffle(order)
    for step in order:
        if step == 0:
            img = np.clip(img * fb, 0, 1)
        elif step == 1:
            m = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY).mean()
            img = np.clip(img * fc + m * (1 - fc), 0, 1)
        elif step == 2:
            grey = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)[..., None]
            img = np.clip(img * fs + grey * (1 - fs), 0, 1)
        else:
            hsv = cv2.cvtColor(img, cv2.COLOR_RGB2HSV)
            hsv[..., 0] = (hsv[..., 0] + fh * 360) % 360
            img = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
    return img.astype(np.float32)


def list_tiles(root: str) -> list[tuple[str, str]]:
    """(tile path, chunk dir) of every tile, in DLAS's order."""
    tiles = []
    for chunk in sorted(os.scandir(root), key=lambda e: e.name):
        if chunk.is_dir() and not chunk.name.startswith("."):
            for dirpath, _, names in sorted(os.walk(chunk.path)):
                for n in sorted(names):
                    if n.endswith(".jpg") and "ref.jpg" not in n:
                        tiles.append((os.path.join(dirpath, n), chunk.path))
    return tiles


class DlasStyle(torch.utils.data.Dataset):
    """DLAS's SingleImageDataset for these configurations, in OpenCV/numpy."""

    def __init__(self, root: str, opt: dict) -> None:
        self.target, self.scale = opt["target_size"], opt["scale"]
        self.need_ref = opt.get("need_ref", False)
        self.before = opt.get("corrupt_before_downsize", False)
        self.corruptor = DlasStyleCorruptor(opt)
        self.tiles = list_tiles(root)

    def __len__(self) -> int:
        return len(self.tiles)

    def __getitem__(self, i: int) -> dict:
        path, chunk = self.tiles[i]
        tile = read(path)
        if self.need_ref:
            ref = read(os.path.join(chunk, "ref.jpg"))
            centre, width = (128, 128), 256
            mask = np.full(tile.shape[:2] + (1,), 0.1, dtype=tile.dtype)
            mask[centre[0] - width // 2 : centre[0] + width // 2,
                 centre[1] - width // 2 : centre[1] + width // 2] = 1  # fmt: skip
        else:
            ref, mask, centre = np.zeros_like(tile), np.zeros(tile.shape[:2] + (1,)), (0, 0)
        h = tile.shape[0]
        size = (self.target, self.target)
        if h != self.target:
            tile, ref = (cv2.resize(a, size, interpolation=cv2.INTER_AREA) for a in (tile, ref))
            mask = cv2.resize(mask, size, interpolation=cv2.INTER_AREA)
            h = self.target
        else:
            mask = mask.squeeze(-1)
        small = (h // self.scale, h // self.scale)
        src = tile
        if self.before and self.corruptor.fixed:
            src = self.corruptor.corrupt_images(np.copy([tile]))[0]
        lq, lref, lmask = (cv2.resize(a, small, interpolation=cv2.INTER_AREA)
                           for a in (src, ref, mask))  # fmt: skip
        if not self.before and self.corruptor.fixed:
            lq = self.corruptor.corrupt_images([lq])[0]

        def t(a):
            return torch.from_numpy(np.ascontiguousarray(np.transpose(a, (2, 0, 1)))).float()

        hq_ref = torch.cat([t(ref), torch.from_numpy(mask).unsqueeze(0)], 0).float()
        lq_ref = torch.cat([t(lref), torch.from_numpy(lmask).unsqueeze(0)], 0).float()
        return {"lq": t(lq), "hq": t(tile), "gt_fullsize_ref": hq_ref, "lq_fullsize_ref": lq_ref,
                "lq_center": torch.tensor([c // self.scale for c in centre], dtype=torch.long),
                "gt_center": torch.tensor(centre, dtype=torch.long),
                "LQ_path": path, "GT_path": path}  # fmt: skip


class NoWork(torch.utils.data.Dataset):
    """Zero tensors shaped like a configuration's items."""

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


def decode_floor(tiles: list[tuple[str, str]], samples: int, with_ref: bool) -> float:
    """Samples/s of reading and decoding the tiles (and refs) alone, on 2 threads."""
    g = torch.Generator().manual_seed(0)
    order = torch.randperm(len(tiles), generator=g).tolist()
    order = (order * (samples // len(order) + 1))[:samples]

    def one(i: int) -> None:
        path, chunk = tiles[i]
        for p in (path, os.path.join(chunk, "ref.jpg")) if with_ref else (path,):
            with open(p, "rb") as f:
                cv2.imdecode(np.frombuffer(f.read(), np.uint8), cv2.IMREAD_UNCHANGED)

    cv2.setNumThreads(1)
    with ThreadPoolExecutor(2) as pool:
        t = time.perf_counter()
        list(pool.map(one, order, chunksize=16))
        return samples / (time.perf_counter() - t)


def seeded_loader(ds, workers: int, batch_size: int, collate=None):
    """A DataLoader shuffled with a fixed seed, fork workers, `collate` (None: torch's)."""
    g = torch.Generator().manual_seed(0)
    return torch.utils.data.DataLoader(
        ds, batch_size=batch_size, shuffle=True, num_workers=workers, generator=g,
        drop_last=True, multiprocessing_context="fork" if workers else None,
        collate_fn=collate,
    )  # fmt: skip


def samples_per_sec(ds, batches: int, workers: int, batch_size: int, collate=None) -> float:
    return loader_samples_per_sec(seeded_loader(ds, workers, batch_size, collate), batches)


def create_dataloader_of(ds, workers: int, batch_size: int):
    """``dlas_fast.create_dataloader``'s train loader: shuffled, its collate; no pinned
    memory, like the hand-built loader."""
    opt = {"phase": "train", "batch_size": batch_size, "n_workers": workers, "pin_memory": False}
    return dlas_fast.create_dataloader(ds, opt)


def hand_built(ds, workers: int, batch_size: int):
    """The DataLoader most training code builds: torch's defaults, default collate."""
    return torch.utils.data.DataLoader(ds, batch_size=batch_size, num_workers=workers,
                                       shuffle=True)  # fmt: skip


def loader_samples_per_sec(loader, batches: int) -> float:
    """Samples/s in the main process over `batches` batches of `loader`, after 10."""
    if batches + 10 > len(loader):
        sys.exit(f"--batches: at most {len(loader) - 10} on this dataset (one epoch, "
                 "less the 10 warm-up batches)")  # fmt: skip
    torch.manual_seed(0)  # the shuffle of loaders without a generator of their own
    it = iter(loader)
    for _ in range(10):  # warm-up: starts the workers
        next(it)
    n = 0
    t = time.perf_counter()
    for _ in range(batches):
        n += len(next(it)["hq"])
    secs = time.perf_counter() - t
    del it
    return n / secs


def ensure_data(photos: Path, data: Path) -> Path:
    if not (data / ".dlas_fast-report-1of1.json").exists():
        print(f"extracting {photos} into {data} (once)...", flush=True)
        s = dlas_fast.extract(photos, data, threads=os.cpu_count() or 2, overwrite=True)
        print(f"  {s.tiles_written} tiles", flush=True)
    return data


def parse_args(doc: str, configs: dict, batches: int):
    """The command line of the loading benchmarks over the extracted photo corpus:
    (arguments, the extracted data folder, made once)."""
    cache = Path(os.environ.get("DLAS_FAST_CACHE", Path.home() / ".cache" / "dlas_fast"))
    p = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    p.add_argument("--config", nargs="+", choices=sorted(configs), default=sorted(configs))
    p.add_argument("--photos", type=Path, default=cache / "photos")
    p.add_argument("--data", type=Path, default=cache / "bench_loader_data")
    p.add_argument("--batches", type=int, default=batches)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=16)
    args = p.parse_args()
    data = ensure_data(args.photos, args.data)
    print(f"command: {' '.join(sys.argv)}")
    warn_if_dev_build()
    return args, data


def warn_if_dev_build() -> None:
    """Prints what build is measured, and a warning for a development build, which
    loads at about half the speed of the release build ``pip install .`` makes."""
    info = dlas_fast.build_info()
    print(f"build: dlas_fast {info['version']}, {info['codec']} ({info['codec_simd']}), "
          f"{info['optimisation']}", flush=True)  # fmt: skip
    if not info["optimisation"].startswith("release"):
        print("WARNING: dlas_fast is a development build: its figures are about half a "
              "release build's. Benchmark what `pip install .` installs.", flush=True)  # fmt: skip


def main() -> int:
    args, data = parse_args(__doc__, CONFIGS, 150)
    for name in args.config:
        bench_config(name, data, args)
    return 0


def bench_config(config: str, data: Path, args) -> None:
    opt = CONFIGS[config]
    ours = dlas_fast.create_dataset(dict(opt, paths=str(data)))
    dlas = DlasStyle(str(data), opt)
    assert len(ours) == len(dlas), (len(ours), len(dlas))
    nowork = NoWork(len(ours), opt["target_size"], opt["scale"])
    w, bs = args.workers, args.batch_size
    pipelines = (
        ("ours, threaded", partial(seeded_loader, ours, 0, bs, collate)),
        ("ours", partial(create_dataloader_of, ours, w, bs)),
        ("ours, hand-built", partial(hand_built, ours, w, bs)),
        ("ceiling: no work", partial(seeded_loader, nowork, w, bs)),
        ("dlas-style", partial(seeded_loader, dlas, w, bs)),
    )
    figures: dict[str, list[float]] = {name: [] for name, _ in pipelines}
    figures["decode floor"] = []
    samples = args.batches * args.batch_size
    print(f"\nconfiguration {config}: {opt}")
    for run in range(args.runs):
        for name, make in pipelines:
            sps = loader_samples_per_sec(make(), args.batches)
            figures[name].append(sps)
            print(f"run {run + 1} {name:<22} {sps:8.1f} samples/s", flush=True)
        sps = decode_floor(dlas.tiles, samples, opt.get("need_ref", False))
        figures["decode floor"].append(sps)
        print(f"run {run + 1} {'decode floor':<22} {sps:8.1f} samples/s", flush=True)
    med = {k: statistics.median(v) for k, v in figures.items()}
    print(f"\n| configuration {config} | samples/s (median) | max |\n|---|---:|---:|")
    for k, v in figures.items():
        print(f"| {k} | {med[k]:.0f} | {max(v):.0f} |")
    for k in ("ours, threaded", "ours", "ours, hand-built", "ceiling: no work"):
        print(f"{k} / dlas-style: {med[k] / med['dlas-style']:.2f}x (medians)")
    print(f"hand-built / create_dataloader: {med['ours, hand-built'] / med['ours']:.2f}x "
          "(medians)")  # fmt: skip
    for k in ("ours, threaded", "ours"):
        print(f"{k} / decode floor: {med[k] / med['decode floor']:.0%} (medians)")


if __name__ == "__main__":
    sys.exit(main())
