"""``stylegan2``: Stylegan2Dataset (docs/spec.md §5).

Per image: RGB (RGBA with ``transparent``), the shorter side resized to
``target_size`` (bilinear, antialiased, as torchvision's ``Resize`` on a PIL image),
then with probability ``aug_prob`` a random-resized crop (area 0.5-1.0, aspect
0.98-1.02) and otherwise a centre crop, to ``target_size`` squared. ``lq`` and ``hq``
are the same tensor.

The image is decoded natively and resized with torch's antialiased bilinear kernel
(natively for RGB images, the same weights), both with the GIL released, rounding to
8-bit steps after each resize as PIL does.
torchvision is not needed. DLAS lists the files in glob order, which depends on the
file system; here the files of each extension come sorted.
With ``transparent``, images are read with Pillow, since the native decoder keeps
only RGB (from regular files only, as the native decoder reads them).

A JPEG whose shorter side is 4x ``target_size`` or more is decoded reduced (1/2, 1/4
or 1/8, its shorter side kept at twice ``target_size`` or more) and resized from
there; ``exact_decode: true`` decodes every image at full size (docs/loading.md,
"Reduced decoding").
"""

from __future__ import annotations

import math
import os
import random
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from dlas_fast._native import ImageSizeError, decode_image, decode_image_reduced, resize_antialias
from dlas_fast.corruptor import seed_of
from dlas_fast.datasets.base import EpochDataset, file_error
from dlas_fast.datasets.files import open_image
from dlas_fast.datasets.options import int_option, warn_unknown

OPTIONS = frozenset(
    {"path", "target_size", "aug_prob", "transparent", "random_seed", "on_error", "exact_decode"}
)

#: The extensions listed, in DLAS's order.
EXTENSIONS = ("jpg", "jpeg", "png", "webp")

#: The most pixels an image may have once its shorter side is resized to
#: ``target_size`` (a float32 RGB image of 32 MP is 400 MB, and the resize needs as
#: much again): a more elongated image is an ImageSizeError naming it, which
#: ``on_error: skip`` passes over.
MAX_RESIZED_PIXELS = 1 << 25


def _resize(t: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """Antialiased bilinear resize of a 1xCxHxW tensor of 0-255 values, rounded to
    8-bit steps as PIL's resize of an 8-bit image."""
    if t.shape[-2:] == (h, w):
        return t
    out = F.interpolate(t, size=(h, w), mode="bilinear", antialias=True, align_corners=False)
    return out.round_().clamp_(0, 255)


def resized_crop_params(height: int, width: int, rng: random.Random):
    """torchvision's ``RandomResizedCrop.get_params`` with scale (0.5, 1) and ratio
    (0.98, 1.02): (top, left, h, w)."""
    area = height * width
    lo, hi = math.log(0.98), math.log(1.02)
    for _ in range(10):
        target = area * rng.uniform(0.5, 1.0)
        aspect = math.exp(rng.uniform(lo, hi))
        w = int(round(math.sqrt(target * aspect)))
        h = int(round(math.sqrt(target / aspect)))
        if 0 < w <= width and 0 < h <= height:
            return rng.randint(0, height - h), rng.randint(0, width - w), h, w
    ratio = width / height
    if ratio < 0.98:
        w, h = width, int(round(width / 0.98))
    elif ratio > 1.02:
        h, w = height, int(round(height * 1.02))
    else:
        w, h = width, height
    return (height - h) // 2, (width - w) // 2, h, w


class Stylegan2Dataset(EpochDataset):
    """DLAS's Stylegan2Dataset, built from the same option dict.

    Items are dicts: ``lq`` = ``hq`` (float32, ``(3, S, S)``, or 4 channels with
    ``transparent``, in [0, 1]) and ``GT_path``. With ``random_seed`` the crops repeat
    for the same (epoch, index).
    """

    MODE = "stylegan2"
    OPTIONS = OPTIONS

    def __init__(self, opt: Mapping) -> None:
        self.opt = dict(opt)
        warn_unknown(self.opt, self.OPTIONS, self.MODE)
        for key in ("path", "target_size"):
            if key not in self.opt:
                raise ValueError(f"{self.MODE}: option {key!r} is required")
        self.folder = os.fspath(self.opt["path"])
        self.image_size = int_option(self.opt, "target_size", required=True)
        self.aug_prob = float(self.opt.get("aug_prob", 0.0))
        if not 0.0 <= self.aug_prob <= 1.0:
            raise ValueError(f"option 'aug_prob': must be in [0, 1], got {self.aug_prob}")
        self.transparent = bool(self.opt.get("transparent", False))
        self.exact_decode = bool(self.opt.get("exact_decode", False))
        self._init_seed()
        self.seed = seed_of(self.opt.get("random_seed"))
        self._init_epoch()
        self._init_errors()
        if not os.path.isdir(self.folder):
            raise ValueError(f"{self.MODE}: option 'path': {self.folder} is not a folder")
        root = Path(self.folder)
        self.paths = [str(p) for ext in EXTENSIONS for p in sorted(root.glob(f"**/*.{ext}"))]
        if not self.paths:
            raise ValueError(
                f"{self.MODE}: no images in {self.folder} (looked for "
                f"{', '.join('*.' + e for e in EXTENSIONS)} in every sub-folder)"
            )

    def __len__(self) -> int:
        return len(self.paths)

    def get_paths(self) -> list[str]:
        """The source file of every item, in item order (as DLAS\'s ``get_paths``)."""
        return list(self.paths)

    def _rng(self, index: int) -> random.Random:
        return random.Random(f"{self.seed}:{self._epoch.value}:{index}")

    def _read(self, path: str) -> np.ndarray:
        if not self.transparent:
            return decode_image(path)
        with open_image(path) as img:
            return np.array(img.convert("RGBA"))

    def __getitem__(self, index: int) -> dict:
        return self._guarded(index, self._item)

    def _item(self, index: int) -> dict:
        path = self.paths[index]
        s = self.image_size
        if self.transparent or self.exact_decode:
            pixels = self._read(path)
            h, w = pixels.shape[:2]
        else:
            # (h, w): the full size, which every size below is computed from.
            pixels, (h, w) = decode_image_reduced(path, 2 * s)
        # torchvision's Resize(s): the shorter side to s, the other scaled (truncated).
        nh, nw = (int(s * h / w), s) if w <= h else (s, int(s * w / h))
        if nh * nw > MAX_RESIZED_PIXELS:
            raise file_error(
                ImageSizeError,
                path,
                f"a {w}x{h} image is {nw}x{nh} once its shorter side is resized to "
                f"target_size {s}, over {MAX_RESIZED_PIXELS} pixels: too elongated for this "
                "target_size; crop it or remove it",
            )
        if pixels.shape[2] == 3:
            # Natively from the 8-bit pixels: no float copy of the whole image.
            t = torch.from_numpy(resize_antialias(pixels, nh, nw)).unsqueeze(0)
        else:
            t = _resize(torch.from_numpy(pixels).permute(2, 0, 1).unsqueeze(0).float(), nh, nw)
        rng = self._rng(index)
        if rng.random() < self.aug_prob:
            top, left, ch, cw = resized_crop_params(nh, nw, rng)
            t = _resize(t[..., top : top + ch, left : left + cw], s, s)
        else:
            top, left = int(round((nh - s) / 2.0)), int(round((nw - s) / 2.0))
            t = t[..., top : top + s, left : left + s]
        img = (t[0] / 255.0).contiguous()
        return {"lq": img, "hq": img, "GT_path": path}
