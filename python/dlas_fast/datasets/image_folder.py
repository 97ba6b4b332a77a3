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

from dlas_fast._native import ImageFolderList, ImageFolderLoader, check_shape
from dlas_fast.corruptor import ImageCorruptor
from dlas_fast.datasets.base import NativeBatches, SharedOutputs
from dlas_fast.datasets.options import (
    CORRUPTOR_KEYS,
    SHAPE_KEYS,
    int_option,
    warn_unknown,
    weights_option,
)
from dlas_fast.datasets.shm_pool import release

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
                f"{self.MODE}: option 'labeler' (DLAS's VsNet patch labels) is not supported"
            )
        warn_unknown(self.opt, self.OPTIONS | CORRUPTOR_KEYS, self.MODE)
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
        check_shape(self.target_size, self.multiple, self.scale, False)
        self.skip_lq = bool(self.opt.get("skip_lq", False))
        self.fetch_alt_image = bool(self.opt.get("fetch_alt_image", False))
        self.fetch_alt_tiled_image = bool(self.opt.get("fetch_alt_tiled_image", False))
        if self.fetch_alt_image and self.fetch_alt_tiled_image:
            raise ValueError(
                "options 'fetch_alt_image' and 'fetch_alt_tiled_image' are mutually exclusive"
            )
        self.corrupt_before_downsize = bool(self.opt.get("corrupt_before_downsize", False))
        factor = int_option(self.opt, "corrupt_before_downsize_factor", 1)
        if factor != 1 and not self.corrupt_before_downsize:
            factor = 1  # DLAS reads it only with corrupt_before_downsize
        if self.scale % factor:
            raise ValueError(
                f"option 'corrupt_before_downsize_factor': must divide scale ({self.scale}), "
                f"got {factor}"
            )
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
        if isinstance(jitter, bool) or not isinstance(jitter, (int, float)) or jitter < 0:
            raise ValueError(
                f"option 'all_image_color_jitter': must be a number >= 0, got {jitter!r}"
            )
        fixed = self.opt.get("fixed_parameters") or {}
        if not isinstance(fixed, Mapping):
            raise ValueError(f"option 'fixed_parameters': must be a dict, got {fixed!r}")
        self.fixed_parameters = {k: torch.tensor(v) for k, v in fixed.items()}
        self._init_seed()
        self.corruptor = ImageCorruptor(self.opt)  # checks every corruption name
        self._init_epoch()
        self._init_errors()
        self.files = ImageFolderList(self.paths, weights)
        if len(self.files) == 0:
            raise ValueError(
                f"{self.MODE}: no images in {', '.join(self.paths)} (looked for files "
                f"ending in {' '.join(EXTENSIONS)}, in every sub-folder)"
            )
        alt = "none"
        if self.fetch_alt_image:
            alt = "next_frame"
        elif self.fetch_alt_tiled_image:
            alt = "tile"
        crop = int_option(self.opt, "center_crop_hq_sz", hi=_MAX_CROP)
        self._loader = ImageFolderLoader(
            self.files,
            self.target_size,
            self.multiple,
            self.scale,
            crop,
            not bool(self.opt.get("disable_flip", False)),
            bool(self.opt.get("force_square", True)),
            float(jitter),
            alt,
            self.skip_lq,
            self.corrupt_before_downsize,
            factor,
            affine,
        )

    def __len__(self) -> int:
        return len(self.files)

    def get_paths(self) -> list[str]:
        """Every item's image path, in item order."""
        return self.files.paths()

    def _finish(self, arrays, n: int, shared=None) -> dict:
        """The batch dict of the loader's arrays (or of `shared` tensors that hold
        them)."""
        hq, lq, alt_hq, alt_lq, has_alt, entropy, paths = arrays
        if shared is not None:
            out = dict(shared)
            out["has_alt"].copy_(torch.from_numpy(has_alt))
        else:
            out = {"hq": torch.from_numpy(hq)}
            if lq is not None:
                out["lq"] = torch.from_numpy(lq)
            if alt_hq is not None:
                out["alt_hq"] = torch.from_numpy(alt_hq)
            if alt_lq is not None:
                out["alt_lq"] = torch.from_numpy(alt_lq)
            if entropy is not None:
                out["corruption_entropy"] = torch.from_numpy(entropy)
            out["has_alt"] = torch.from_numpy(has_alt)
            for k, v in self.fixed_parameters.items():
                out[k] = v.unsqueeze(0).expand(n, *v.shape).clone()
        out["LQ_path"] = paths
        out["HQ_path"] = list(paths)
        return out

    def __getitem__(self, item: int) -> dict:
        return self._guarded(item, self._item)

    def _item(self, item: int) -> dict:
        arrays = self._loader.load([item], self.corruptor.native, self._epoch.value, 1)
        out = {k: v[0] for k, v in self._finish(arrays, 1).items()}
        out["has_alt"] = bool(out["has_alt"])
        return out

    def _load_arrays(self, specs, threads: int, shared: SharedOutputs | None):
        out = None
        if shared is not None:
            t = shared.tensors
            out = tuple(
                t[k].numpy() if k in t else None
                for k in ("hq", "lq", "alt_hq", "alt_lq", "corruption_entropy")
            ) + (shared.zeroed,)
        return self._loader.load(specs, self.corruptor.native, self._epoch.value, threads, out)

    def _stack(self, specs, arrays, n: int, shared: SharedOutputs | None) -> dict:
        return self._finish(arrays, n, None if shared is None else shared.tensors)

    def _entropy_len(self) -> int:
        native = self.corruptor.native
        if native.is_noop:
            return 0
        return native.fixed_len * (2 if self.fetch_alt_image else 1)

    def _shared_outputs(self, n: int) -> SharedOutputs | None:
        """Tensors of a batch of `n` in one shared-memory storage when `target_size`
        fixes the sizes (see SingleImageDataset._shared_outputs); else None."""
        if self.target_size is None:
            return None
        side = self.target_size - self.target_size % (self.multiple * self.scale)
        small = side // self.scale
        if small == 0:
            return None
        f32 = torch.float32
        layout = [("hq", (n, 3, side, side), f32)]
        if not self.skip_lq:
            layout.append(("lq", (n, 3, small, small), f32))
        if self.fetch_alt_image or self.fetch_alt_tiled_image:
            layout.append(("alt_hq", (n, 3, side, side), f32))
        if self.fetch_alt_image and not self.skip_lq:
            layout.append(("alt_lq", (n, 3, small, small), f32))
        if not self.skip_lq:
            layout.append(("corruption_entropy", (n, self._entropy_len()), f32))
        layout.append(("has_alt", (n,), torch.bool))
        for k, v in self.fixed_parameters.items():
            layout.append((k, (n, *v.shape), v.dtype))
        try:
            flat, views, zeroed, slot = self._shared_block(
                [(shape, dtype) for _, shape, dtype in layout]
            )
        except (AttributeError, RuntimeError):
            self.collated_as_is = False
            return None
        tensors = {k: v for (k, _, _), v in zip(layout, views)}
        try:
            for k, v in self.fixed_parameters.items():
                tensors[k].copy_(v.expand(n, *v.shape))
        except BaseException:
            release(slot)
            raise
        return SharedOutputs(flat, tensors, frozenset(), zeroed, slot)
