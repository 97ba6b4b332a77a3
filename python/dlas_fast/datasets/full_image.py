"""``fullimage``: FullImageDataset (docs/spec.md §5; deprecated upstream, kept for old configs).

Pulls a random tile from each full image on the fly, natively (see
``rust/dlas-core/src/load/full_image/mod.rs`` for the steps). The train phase returns tiles
of ``target_size`` (LQ ``target_size // scale``); other phases return whole images.

Differences from DLAS, on purpose: images come out RGB from the start (DLAS blurs and
resizes BGR, the same thing for these operations); with ``dataroot_LQ`` the LQ image
gets the same flips, crop and tile as the HQ image (DLAS draws them separately, so the
pair does not line up); an even ``blur_magnitude`` is made odd (OpenCV refuses it); an
image smaller than ``min_tile_size`` is an error naming it. ``use_compression_artifacts``
and ``grayscale`` are accepted and ignored, as in DLAS (whose code for them is
commented out).
"""

from __future__ import annotations

import os
import random
from collections.abc import Mapping

import torch

from dlas_fast._native import ImageFolderList, Loader
from dlas_fast.corruptor import native_corruptor
from dlas_fast.datasets.base import EpochDataset
from dlas_fast.datasets.options import (
    MAX_BLUR_MAGNITUDE,
    int_option,
    warn_unknown,
    weights_option,
)

OPTIONS = frozenset(
    {
        "dataroot_GT",
        "dataroot_GT_weights",
        "dataroot_LQ",
        "min_tile_size",
        "target_size",
        "scale",
        "fixed_size",
        "tile_scale_normal_stddev",
        "use_flip",
        "use_rot",
        "use_blurring",
        "blur_magnitude",
        "force_multiple",
        "lq_noise",
        "use_compression_artifacts",
        "grayscale",
        "random_seed",
        "on_error",
    }
)


def _roots(value) -> list[str]:
    if isinstance(value, (str, os.PathLike)):
        return [os.fspath(value)]
    return [os.fspath(v) for v in value]


class FullImageDataset(EpochDataset):
    """DLAS's FullImageDataset, built from the same option dict.

    Items are dicts with SingleImageDataset's keys (``lq``, ``hq``, ``gt_fullsize_ref``,
    ``lq_fullsize_ref`` with the tile mask as a 4th channel, ``lq_center``,
    ``gt_center``, ``LQ_path``, ``GT_path``) plus ``HQ_path`` (DLAS returns the two
    paths only; ``GT_path`` = ``HQ_path``).
    """

    MODE = "fullimage"
    OPTIONS = OPTIONS

    def __init__(self, opt: Mapping) -> None:
        self.opt = dict(opt)
        warn_unknown(self.opt, self.OPTIONS, self.MODE)
        if "dataroot_GT" not in self.opt:
            raise ValueError(f"{self.MODE}: option 'dataroot_GT' is required")
        self.train = self.opt.get("phase", "train") == "train"
        for key in ("scale",) + (("min_tile_size", "target_size") if self.train else ()):
            int_option(self.opt, key, required=True)
        int_option(self.opt, "force_multiple", 1)
        int_option(self.opt, "blur_magnitude", 3, lo=0, hi=MAX_BLUR_MAGNITUDE)
        noise = self.opt.get("lq_noise")
        # Checked natively before the folders are listed.
        loader = Loader(
            "full_image",
            {
                "train": self.train,
                "min_tile_size": int(self.opt.get("min_tile_size") or 0),
                "target_size": int(self.opt.get("target_size") or 0),
                "scale": int(self.opt["scale"]),
                "fixed_size": bool(self.opt.get("fixed_size", False)),
                "tile_scale_normal_stddev": float(self.opt.get("tile_scale_normal_stddev", 0.17)),
                "use_flip": bool(self.opt.get("use_flip", False)),
                "use_rot": bool(self.opt.get("use_rot", False)),
                "use_blurring": bool(self.opt.get("use_blurring", False)),
                "blur_magnitude": int(self.opt.get("blur_magnitude", 3)),
                "force_multiple": int(self.opt.get("force_multiple", 1)),
                "lq_noise": None if noise is None else float(noise),
            },
        )
        roots = _roots(self.opt["dataroot_GT"])
        weights = weights_option(self.opt, "dataroot_GT_weights", len(roots))
        self.files = ImageFolderList(roots, weights, sort=True)
        if len(self.files) == 0:
            raise ValueError(f"{self.MODE}: no images in {', '.join(roots)}")
        self.lq_files = []
        if self.opt.get("dataroot_LQ"):
            for root in _roots(self.opt["dataroot_LQ"]):
                files = ImageFolderList([root], [1], sort=True)
                if len(files) == 0:
                    raise ValueError(f"{self.MODE}: no images in dataroot_LQ {root}")
                self.lq_files.append(files)
        self._loader = loader.with_files(self.files)
        self._init_seed()
        self._keys = native_corruptor({"random_seed": self.opt.get("random_seed")})
        self._init_epoch()
        self._init_errors()

    def __len__(self) -> int:
        return len(self.files)

    def get_paths(self) -> list[str]:
        """The source file of every item, in item order (as DLAS\'s ``get_paths``)."""
        return self.files.paths()

    def _lq_path(self, index: int) -> str | None:
        if not self.lq_files:
            return None
        # Which LQ folder: keyed on (seed, epoch, index) like every other draw.
        key = f"{self._keys.seed}/{self._epoch.value}/{index}"
        files = self.lq_files[random.Random(key).randrange(len(self.lq_files))]
        return files.path(index % len(files))

    def __getitem__(self, index: int) -> dict:
        return self._guarded(index, self._item)

    def _item(self, index: int) -> dict:
        index = range(len(self))[index]  # negative indices count from the end
        lq_path = self._lq_path(index)
        items = {"index": [index], "lq_path": [lq_path]}
        arrays = self._loader.load(items, self._keys, self._epoch.value)
        paths = arrays.pop("paths")
        item = {k: torch.from_numpy(v[0]) for k, v in arrays.items()}
        path = paths[0]
        return {
            **item,
            "LQ_path": lq_path or path,
            "GT_path": path,
            "HQ_path": path,
        }
