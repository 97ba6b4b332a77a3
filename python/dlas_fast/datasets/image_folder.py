"""``imagefolder``: ImageFolderDataset over folders of raw images (docs/spec.md §5).

Each item is one image file. The listing is native and cached like the chunk index
(``<root>/.dlas_fast-folder/listing.bin``, fingerprinted by every folder's mtime,
relocatable, not a pickle; DLAS's ``cache.pth`` is neither read nor written). Reading,
the centre crop, flip, square crop, colour jitter, ``resize_hq``, the alt image, the LQ
synthesis with its corruptions and the normalisation run in one native call per batch
with the GIL released.

Random draws (flip, colour jitter, alt tile, corruptions) are keyed on
``(random_seed, epoch, item index)``, so a seeded dataset gives the same items whatever
the number of workers (see :mod:`dlas_fast.corruptor`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import torch

from dlas_fast._native import ImageFolderList, Loader
from dlas_fast.corruptor import ImageCorruptor
from dlas_fast.datasets.base import NativeBatches
from dlas_fast.datasets.options import (
    CORRUPTOR_KEYS,
    DEGRADATION_KEYS,
    SHAPE_KEYS,
    check_degradation,
    int_option,
    wants_usm,
    warn_unknown,
    weights_option,
)

OPTIONS = SHAPE_KEYS | frozenset(
    {
        "center_crop_hq_sz",
        "disable_flip",
        "force_square",
        "all_image_color_jitter",
        "corrupt_before_downsize",
        "corrupt_before_downsize_factor",
        "skip_lq",
        "fetch_alt_image",
        "fetch_alt_tiled_image",
        "normalize",
        "rgb_n1_to_1",
        "fixed_parameters",
        "on_error",
        "exact_decode",
    }
)

#: ``normalize`` values: per-channel (mean, std).
NORMALIZE = {
    "stylegan2_norm": ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
    "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
}

#: The image extensions listed (DLAS's, these exact spellings).
EXTENSIONS = (".jpg", ".JPG", ".jpeg", ".JPEG", ".png", ".PNG", ".ppm", ".PPM", ".bmp",
              ".BMP", ".webp", ".WEBP")  # fmt: skip


#: The largest ``center_crop_hq_sz``: a crop never allocates more than the image.
_MAX_CROP = 1 << 31


class ImageFolderDataset(NativeBatches):
    """DLAS's ImageFolderDataset, built from the same option dict.

    Items are dicts: ``hq (3,H,W)``, ``lq (3,h,w)`` (not with ``skip_lq``), ``LQ_path``
    and ``HQ_path`` (the image's path), ``has_alt`` (bool), ``alt_hq`` (with
    ``fetch_alt_image`` or ``fetch_alt_tiled_image``), ``alt_lq`` (with
    ``fetch_alt_image``), ``corruption_entropy`` (float32: the fixed corruptions'
    strengths, image after image; not with ``skip_lq``), and every ``fixed_parameters``
    entry as a tensor. Images are float32, in [0, 1] unless ``normalize`` or
    ``rgb_n1_to_1`` say otherwise.
    """

    MODE = "imagefolder"
    OPTIONS = OPTIONS

    def __init__(self, opt: Mapping) -> None:
        self.opt = dict(opt)
        if "labeler" in self.opt:
            raise NotImplementedError(
                f"{self.MODE}: option 'labeler' (DLAS's VsNet patch labels: the keys "
                "labels, labels_mask, label_strings) is not supported by dlas_fast. For a "
                "labelled folder keep DLAS's own class under a mode of its own: "
                "dlas_fast.register_dataset('labeled_imagefolder', ImageFolderDataset) "
                "with DLAS's `from data.images.image_folder_dataset import "
                "ImageFolderDataset`, and `mode: labeled_imagefolder` in this section"
            )
        warn_unknown(self.opt, self.OPTIONS | CORRUPTOR_KEYS | DEGRADATION_KEYS, self.MODE)
        if "paths" not in self.opt:
            raise ValueError(f"{self.MODE}: option 'paths' is required")
        paths = self.opt["paths"]
        if isinstance(paths, (str, os.PathLike)):
            paths = [paths]
        self.paths = [os.fspath(p) for p in paths]
        if not self.paths:
            raise ValueError(f"{self.MODE}: option 'paths' names no folder")
        weights = weights_option(self.opt, "weights", len(self.paths))
        self.scale = int_option(self.opt, "scale", 1)
        self.multiple = int_option(self.opt, "force_multiple", 1)
        self.target_size = int_option(self.opt, "target_size")
        self.skip_lq = bool(self.opt.get("skip_lq", False))
        self.fetch_alt_image = bool(self.opt.get("fetch_alt_image", False))
        self.fetch_alt_tiled_image = bool(self.opt.get("fetch_alt_tiled_image", False))
        self.corrupt_before_downsize = bool(self.opt.get("corrupt_before_downsize", False))
        normalize = self.opt.get("normalize")
        if normalize is not None and normalize not in NORMALIZE:
            raise ValueError(
                f"option 'normalize': {normalize!r} is not one of {', '.join(NORMALIZE)}"
            )
        self.rgb_n1_to_1 = bool(self.opt.get("rgb_n1_to_1", False))
        # normalize, then rgb_n1_to_1, as one v * a + b per channel, done natively.
        affine = None
        if normalize is not None or self.rgb_n1_to_1:
            mean, std = NORMALIZE.get(normalize, ((0.0,) * 3, (1.0,) * 3))
            affine = [(1.0 / s, -m / s) for m, s in zip(mean, std)]
            if self.rgb_n1_to_1:
                affine = [(2 * a, 2 * b - 1) for a, b in affine]
        jitter = self.opt.get("all_image_color_jitter", 0)
        if isinstance(jitter, bool) or not isinstance(jitter, (int, float)):
            raise ValueError(
                f"option 'all_image_color_jitter': must be a number >= 0, got {jitter!r}"
            )
        fixed = self.opt.get("fixed_parameters") or {}
        if not isinstance(fixed, Mapping):
            raise ValueError(f"option 'fixed_parameters': must be a dict, got {fixed!r}")
        self.fixed_parameters = {k: torch.tensor(v) for k, v in fixed.items()}
        # The loading options, checked natively before anything is listed.
        loader = Loader(
            "folder",
            {
                "target_size": self.target_size,
                "force_multiple": self.multiple,
                "scale": self.scale,
                "center_crop_hq_sz": int_option(self.opt, "center_crop_hq_sz", hi=_MAX_CROP),
                "disable_flip": bool(self.opt.get("disable_flip", False)),
                "force_square": bool(self.opt.get("force_square", True)),
                "all_image_color_jitter": float(jitter),
                "fetch_alt_image": self.fetch_alt_image,
                "fetch_alt_tiled_image": self.fetch_alt_tiled_image,
                "skip_lq": self.skip_lq,
                "corrupt_before_downsize": self.corrupt_before_downsize,
                "corrupt_before_downsize_factor": int_option(
                    self.opt, "corrupt_before_downsize_factor", 1
                ),
                "affine": affine,
                "exact_decode": bool(self.opt.get("exact_decode", False)),
                "gt_usm": wants_usm(self.opt),
            },
        )
        self._init_seed()
        check_degradation(self.opt, self.MODE)
        self.corruptor = ImageCorruptor(self.opt)  # checks every corruption name
        self._init_epoch()
        self._init_errors()
        self.files = ImageFolderList(self.paths, weights)
        if len(self.files) == 0:
            raise ValueError(
                f"{self.MODE}: no images in {', '.join(self.paths)} (looked for files "
                f"ending in {' '.join(EXTENSIONS)}, in every sub-folder)"
            )
        self._loader = loader.with_files(self.files)

    def __len__(self) -> int:
        return len(self.files)

    def get_paths(self) -> list[str]:
        """Every item's image path, in item order."""
        return self.files.paths()

    def _extra_outputs(self, n: int) -> dict[str, torch.Tensor]:
        """``fixed_parameters``, one copy per item."""
        return {k: v.unsqueeze(0).expand(n, *v.shape).clone() for k, v in
                self.fixed_parameters.items()}  # fmt: skip

    def _finish(self, stacked: dict, paths: list, n: int) -> dict:
        stacked["LQ_path"] = paths
        stacked["HQ_path"] = list(paths)
        return stacked

    def _finish_item(self, stacked: dict, paths: list) -> dict:
        item = self._finish(stacked, paths, 1)
        item["has_alt"] = bool(item["has_alt"])
        return item
