"""``multiscale``: MultiScaleDataset (docs/spec.md §5).

Per image: a random horizontal flip, vertical flip and transpose (each with probability
1/2), a square crop of the longer side at an offset drawn from N(0, 0.3), an area
resize to ``hq_tile_size * 2^num_scales``, and the quadtree of patches of
:mod:`dlas_fast.patch_tree`, each shrunk to ``hq_tile_size``. The corruptor runs once
on the full resized image and the same tree is cut from the corrupted copy; the LQ
patches are those shrunk by ``scale``. All of it is one native call per batch.

Unlike DLAS, the corruptor sees the image in RGB (DLAS hands it BGR, which changes the
colour corruptions and the JPEG round trip), and a crop offset never runs past the
image (DLAS's can when the sides differ by less than 4 pixels).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from dlas_fast._native import ImageFolderList, Loader
from dlas_fast.corruptor import ImageCorruptor
from dlas_fast.datasets.base import NativeBatches
from dlas_fast.datasets.options import (
    CORRUPTOR_KEYS,
    check_degradation,
    int_option,
    warn_unknown,
)
from dlas_fast.patch_tree import MultiscaleTreeNode, build_multiscale_patch_index_map

__all__ = ["MultiScaleDataset", "MultiscaleTreeNode", "build_multiscale_patch_index_map"]

OPTIONS = frozenset({"paths", "hq_tile_size", "num_scales", "scale", "on_error", "exact_decode"})


class MultiScaleDataset(NativeBatches):
    """DLAS's MultiScaleDataset, built from the same option dict.

    Items are dicts: ``hq (P,3,t,t)``, ``lq (P,3,t/s,t/s)`` (float32, [0, 1]) with
    ``P = (4^num_scales - 1) / 3`` patches in DLAS's order, and ``GT_path``.
    """

    MODE = "multiscale"
    OPTIONS = OPTIONS

    def __init__(self, opt: Mapping) -> None:
        self.opt = dict(opt)
        check_degradation(self.opt, self.MODE, supported=False)
        warn_unknown(self.opt, self.OPTIONS | CORRUPTOR_KEYS, self.MODE)
        for key in ("paths", "hq_tile_size", "num_scales", "scale"):
            if key not in self.opt:
                raise ValueError(f"{self.MODE}: option {key!r} is required")
        paths = self.opt["paths"]
        if isinstance(paths, (str, os.PathLike)):
            paths = [paths]
        self.paths = [os.fspath(p) for p in paths]
        self.tile_size = int_option(self.opt, "hq_tile_size", required=True)
        self.num_scales = int_option(self.opt, "num_scales", hi=12, required=True)
        self.scale = int_option(self.opt, "scale", hi=self.tile_size, required=True)
        # Checked natively (hq_tile_size * 2^num_scales is bounded too) before the
        # folders are listed.
        loader = Loader(
            "multiscale",
            {
                "hq_tile_size": self.tile_size,
                "num_scales": self.num_scales,
                "scale": self.scale,
                "exact_decode": bool(self.opt.get("exact_decode", False)),
            },
        )
        self._init_seed()
        self.corruptor = ImageCorruptor(self.opt)  # checks every corruption name
        self._init_epoch()
        self._init_errors()
        # DLAS lists every root and sorts all the paths together.
        self.files = ImageFolderList(self.paths, [1] * len(self.paths), sort=True)
        if len(self.files) == 0:
            raise ValueError(f"{self.MODE}: no images in {', '.join(self.paths)}")
        self._loader = loader.with_files(self.files)

    def __len__(self) -> int:
        return len(self.files)

    def get_paths(self) -> list[str]:
        """Every item's image path, in item order."""
        return self.files.paths()

    def _shared_outputs(self, n: int) -> None:
        """None: a batch of many patches goes to the main process in fresh shared
        memory, as torch sends it, not in a recycled slot (a worker would keep several
        slots of its size mapped)."""
        return None

    def _finish(self, stacked: dict, paths: list, n: int) -> dict:
        stacked["GT_path"] = paths
        return stacked
