"""``ImageCorruptor``: DLAS's corruptor (docs/spec.md §7), seeded and reproducible, in Rust.

Options (the dataset's own dict): ``fixed_corruptions`` (applied to every image, in
order), ``random_corruptions`` + ``num_corrupts_per_image`` (that many drawn with
replacement per call and applied first), ``corruption_blur_scale`` (1), ``cosine_bias``
(True), ``random_seed``.

``degradation: realesrgan`` replaces the named corruptions with Real-ESRGAN's high-order
degradation (docs/degradations.md), configured with the options of Real-ESRGAN's
training YAML (:data:`REALESRGAN_OPTIONS`); in a dataset it makes each LQ image from its
HQ image.

Reproducibility: a call is keyed on ``(random_seed, epoch, index)``; the same key gives
the same corruption in any process, so a DataLoader gives the same LQ images whatever
its number of workers. Without ``random_seed`` every call is fresh, as in DLAS (the
datasets draw a seed instead, once: see ``EpochDataset._init_seed``).
"""

from __future__ import annotations

import hashlib
import multiprocessing
import warnings
from collections.abc import Mapping, Sequence

import numpy as np

from dlas_fast._native import (
    LIMITS,
    Corruptor,
    realesrgan_corruptor,
    realesrgan_degrade,
    realesrgan_draws,
)

#: Every corruption name ImageCorruptor accepts.
CORRUPTION_NAMES: tuple[str, ...] = tuple(Corruptor.names())


def _names(value) -> list:
    """A corruption list option: a list, one name, or None."""
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def seed_of(value) -> int | None:
    """``random_seed`` as a 64-bit integer (ints as given; strings hashed stably)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, str, bytes)):
        raise ValueError(f"option 'random_seed' must be an int or a string, got {value!r}")
    if isinstance(value, int):
        return value & 0xFFFF_FFFF_FFFF_FFFF
    data = value.encode() if isinstance(value, str) else value
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little")


#: The options of ``degradation: realesrgan``, named as in Real-ESRGAN's training YAML
#: (its dataset section and its model's degradation settings), plus ``gt_usm``.
REALESRGAN_OPTIONS: frozenset[str] = frozenset(
    [
        f"{name}{suffix}"
        for name in (
            "blur_kernel_size",
            "kernel_list",
            "kernel_prob",
            "sinc_prob",
            "blur_sigma",
            "betag_range",
            "betap_range",
            "resize_prob",
            "resize_range",
            "gaussian_noise_prob",
            "noise_range",
            "poisson_scale_range",
            "gray_noise_prob",
            "jpeg_range",
        )
        for suffix in ("", "2")
    ]
    + ["final_sinc_prob", "second_blur_prob", "gt_usm"]
)

#: The values of the ``degradation`` option.
DEGRADATIONS = ("realesrgan",)


def _degradation(opt: Mapping) -> Corruptor | None:
    """The Real-ESRGAN corruptor when `opt` asks for it (``degradation: realesrgan``)."""
    kind = opt.get("degradation")
    if kind is None:
        return None
    if kind not in DEGRADATIONS:
        raise ValueError(
            f"option 'degradation' must be one of {', '.join(DEGRADATIONS)}, got {kind!r}"
        )
    for key in ("fixed_corruptions", "random_corruptions"):
        if _names(opt.get(key)):
            raise ValueError(
                f"option {key!r}: degradation: {kind} makes the LQ images itself; "
                "set one or the other"
            )
    options = {k: opt[k] for k in REALESRGAN_OPTIONS if k in opt}
    for key in ("kernel_list", "kernel_list2"):
        if isinstance(options.get(key), str):  # one name, as a corruption list may be
            options[key] = [options[key]]
    return realesrgan_corruptor(options, seed_of(opt.get("random_seed")))


#: DLAS's corruptor tests a name against these, in this order, by substring (``"x" in
#: name``): the first that matches is the corruption applied. A name that contains none
#: of them but contains "none" does nothing. ``lq_resampling4x``, ``noise-5`` and the
#: ``jpeg-*`` variants must be exact (DLAS fails on any other ``jpeg`` name).
DLAS_NAME_ORDER: tuple[str, ...] = (
    "color_quantization",
    "color_jitter",
    "gaussian_blur",
    "motion_blur",
    "block_noise",
    "lq_resampling",
    "color_shift",
    "interlacing",
    "chromatic_aberration",
    "noise",
    "jpeg",
    "saturation",
    "greyscale",
)

#: The corruptions that DLAS accepts and ignores; ``dlas_noop_corruptions: true`` keeps
#: them doing nothing here too.
DLAS_NOOPS: frozenset[str] = frozenset(
    {"block_noise", "color_shift", "interlacing", "chromatic_aberration"}
)


def dlas_noops(opt: Mapping) -> bool:
    """The option ``dlas_noop_corruptions`` (False by default)."""
    value = opt.get("dlas_noop_corruptions", False)
    if not isinstance(value, bool):
        raise ValueError(f"option 'dlas_noop_corruptions' must be true or false, got {value!r}")
    return value


def resolve_name(name: str) -> str | None:
    """The corruption DLAS applies for `name`: the name itself when it is one of ours,
    else the first of :data:`DLAS_NAME_ORDER` it contains (``none`` when it contains
    only "none"); None when DLAS would fail on it."""
    if name in CORRUPTION_NAMES:
        return name
    for known in DLAS_NAME_ORDER:
        if known in name:
            return None if known == "jpeg" else known
    return "none" if "none" in name else None


def resolve_names(names: list[str], key: str, noops: bool = False) -> list[str]:
    """`names` as DLAS reads them (see :func:`resolve_name`), with a warning for each
    name that is not spelt as ours, naming what it was read as; with `noops`, DLAS's
    ignored corruptions become ``none``. A name DLAS fails on is left for the native
    corruptor to refuse, with the list of known names."""
    out = []
    for name in names:
        resolved = resolve_name(name)
        if resolved is None:
            out.append(name)
            continue
        if resolved != name:
            warnings.warn(
                f"option {key!r}: corruption {name!r} is read as {resolved!r}, as DLAS "
                f"matches names by substring (write {resolved!r} to silence this)",
                UserWarning,
                stacklevel=2,
            )
        out.append("none" if noops and resolved in DLAS_NOOPS else resolved)
    return out


def native_corruptor(opt: Mapping) -> Corruptor:
    """The native corruptor for a DLAS option dict; unknown names are errors here."""
    degrading = _degradation(opt)
    if degrading is not None:
        return degrading
    most = LIMITS["max_corruptions"]  # each image goes through every corruption
    num = opt.get("num_corrupts_per_image", 0)
    if isinstance(num, bool) or not isinstance(num, int) or not 0 <= num <= most:
        raise ValueError(
            f"option 'num_corrupts_per_image' must be an integer from 0 to {most}, got {num!r}"
        )
    fixed = _names(opt.get("fixed_corruptions"))
    if len(fixed) > most:
        raise ValueError(
            f"option 'fixed_corruptions': at most {most} corruptions, got {len(fixed)}"
        )
    scale = opt.get("corruption_blur_scale", 1)
    if isinstance(scale, bool) or not isinstance(scale, (int, float)):
        raise ValueError(f"option 'corruption_blur_scale' must be a number, got {scale!r}")
    names = {}
    for key in ("fixed_corruptions", "random_corruptions"):
        for name in _names(opt.get(key)):
            if not isinstance(name, str):
                raise ValueError(f"option {key!r}: corruption names are strings, got {name!r}")
        names[key] = resolve_names(_names(opt.get(key)), key, dlas_noops(opt))
    return Corruptor(
        names["fixed_corruptions"],
        # DLAS reads random_corruptions only when num_corrupts_per_image is set.
        names["random_corruptions"] if num else [],
        num,
        float(scale),
        bool(opt.get("cosine_bias", True)),
        seed_of(opt.get("random_seed")),
    )


class SharedEpoch:
    """An epoch number shared with DataLoader workers, forked or spawned, persistent or
    not: a 64-bit integer in shared memory that the workers read at each item."""

    def __init__(self, value: int = 0) -> None:
        self._value = multiprocessing.RawValue("q", int(value))

    @property
    def value(self) -> int:
        """The epoch, as every process sharing it sees it now."""
        return self._value.value

    @value.setter
    def value(self, epoch: int) -> None:
        self._value.value = int(epoch)

    def __getstate__(self) -> dict:
        # Shared memory travels only to processes being started (a spawned worker);
        # any other pickle carries the number.
        if multiprocessing.context.get_spawning_popen() is not None:
            return {"shared": self._value}
        return {"value": self._value.value}

    def __setstate__(self, state: dict) -> None:
        if "shared" in state:
            self._value = state["shared"]
        else:
            self._value = multiprocessing.RawValue("q", state["value"])


class ImageCorruptor:
    """DLAS's ImageCorruptor: ``corrupt_images(imgs)`` on HWC float RGB arrays.

    Every name is checked when the corruptor is built (DLAS fails only when an unknown
    one is first drawn). Unlike DLAS, each image's undo list is its own and
    ``random_seed`` makes calls reproducible: a call with ``index=i`` is keyed on
    ``(random_seed, epoch, i)``; calls without an index are keyed on a call counter.
    """

    def __init__(self, opt: Mapping) -> None:
        self.opt = dict(opt)
        self._native = native_corruptor(self.opt)
        self._degrading = self.opt.get("degradation") is not None
        self.epoch = 0

    @property
    def native(self) -> Corruptor:
        """The native corruptor the datasets hand to their batch loaders."""
        return self._native

    @property
    def seed(self) -> int:
        """The seed in use (drawn from the OS when ``random_seed`` is not set)."""
        return self._native.seed

    def set_epoch(self, epoch: int) -> None:
        """Sets the epoch that keys calls made without an explicit ``epoch``."""
        self.epoch = int(epoch)

    def reset_random(self) -> None:
        """DLAS's ``reset_random``: the draws start again. A call with an ``index`` is
        keyed on ``(random_seed, epoch, index)`` and repeats by itself; this sets the
        epoch back to 0 and restarts the count that keys calls made without an index,
        so a seeded corruptor's calls repeat from its first (an unseeded one starts a
        fresh stream, as DLAS's does)."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the names were reported when it was built
            self._native = native_corruptor(self.opt)
        self.epoch = 0

    def corrupt_images(
        self,
        imgs: Sequence[np.ndarray],
        return_entropy: bool = False,
        *,
        index: int | None = None,
        epoch: int | None = None,
    ):
        """Corrupts each ``H x W x 3`` float RGB image in ``[0, 1]``.

        Returns new float32 arrays (the inputs are not modified) and, with
        ``return_entropy``, the strengths drawn for the fixed corruptions.
        """
        if self._native.is_noop:
            return (imgs, []) if return_entropy else imgs
        arrays = []
        for i, img in enumerate(imgs):
            a = np.asarray(img)
            if a.ndim != 3 or a.shape[2] != 3:
                raise ValueError(f"image {i}: expected H x W x 3, got shape {a.shape}")
            arrays.append(np.ascontiguousarray(a, dtype=np.float32))
        out, entropy = self._native.corrupt(
            arrays, self.epoch if epoch is None else int(epoch), index
        )
        return (out, entropy) if return_entropy else out

    @property
    def degrades(self) -> bool:
        """True with ``degradation: realesrgan``."""
        return self._degrading

    def degrade(
        self,
        gt: np.ndarray,
        scale: int = 1,
        *,
        index: int,
        epoch: int | None = None,
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Real-ESRGAN's degradation of one ``H x W x 3`` float RGB ground truth in
        ``[0, 1]``: its LQ image (``H // scale x W // scale x 3`` float32, whole 8-bit
        steps) and, with ``gt_usm: true``, the sharpened ground truth (else None).
        Keyed on ``(random_seed, epoch, index)``."""
        if not self._degrading:
            raise ValueError("degrade needs the option 'degradation: realesrgan'")
        a = np.asarray(gt)
        if a.ndim != 3 or a.shape[2] != 3:
            raise ValueError(f"expected H x W x 3, got shape {a.shape}")
        if isinstance(scale, bool) or int(scale) != scale or scale < 1:
            raise ValueError(f"scale must be a whole number >= 1, got {scale!r}")
        chw = np.ascontiguousarray(a.transpose(2, 0, 1), dtype=np.float32)
        e = self.epoch if epoch is None else int(epoch)
        lq, usm = realesrgan_degrade(self._native, chw, int(scale), e, int(index))
        hwc = lq.transpose(1, 2, 0).copy()
        return hwc, None if usm is None else usm.transpose(1, 2, 0).copy()

    def draws(self, *, index: int, epoch: int | None = None) -> dict:
        """Every random parameter of the degradation of item `index` (nested dicts)."""
        if not self._degrading:
            raise ValueError("draws needs the option 'degradation: realesrgan'")
        return realesrgan_draws(self._native, self.epoch if epoch is None else int(epoch), index)

    # An unseeded corruptor draws a new seed where it is unpickled: its calls are all
    # fresh anyway.
    def __getstate__(self) -> dict:
        return {"opt": self.opt, "epoch": self.epoch}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["opt"])
        self.epoch = state["epoch"]
