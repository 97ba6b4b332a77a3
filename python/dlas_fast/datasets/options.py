"""Reading DLAS option dicts: defaults, a warning for keys nobody uses, and the bounds
on options that size an allocation."""

from __future__ import annotations

import difflib
import numbers
import sys
import warnings
from collections.abc import Iterable, Mapping

from dlas_fast._native import LIMITS
from dlas_fast.corruptor import REALESRGAN_OPTIONS

# Keys DLAS's trainer puts in a dataset section; every dataset accepts them (docs/spec.md §8).
TRAINER_KEYS = frozenset(
    {
        "name",
        "mode",
        "phase",
        "data_type",
        "batch_size",
        "n_workers",
        "use_shuffle",
        "pin_memory",
        "dist",
        "dataset_debugger",
        # Ours: makes an unknown option an error (see warn_unknown).
        "strict_options",
        # Ours: create_dataloader keeps the train loader's workers across epochs.
        "persistent_workers",
    }
)

# The shape options every dataset over `paths` reads (docs/spec.md §4-5).
SHAPE_KEYS = frozenset({"paths", "weights", "target_size", "force_multiple", "scale"})

# The corruptor's options (docs/spec.md §7).
CORRUPTOR_KEYS = frozenset(
    {
        "fixed_corruptions",
        "random_corruptions",
        "num_corrupts_per_image",
        "corruption_blur_scale",
        "cosine_bias",
        "random_seed",
        # Ours: block_noise, color_shift, interlacing, chromatic_aberration do nothing,
        # as in DLAS.
        "dlas_noop_corruptions",
    }
)

# `degradation` and the options of the Real-ESRGAN degradation (docs/degradations.md),
# read by the datasets that make their LQ images with it.
DEGRADATION_KEYS = frozenset({"degradation"}) | REALESRGAN_OPTIONS


def warn_unknown(opt: Mapping, known: Iterable[str], dataset: str) -> None:
    """Names the keys of `opt` that neither `dataset` nor the trainer use, each with the
    option it is probably a misspelling of: in a warning pointing at the caller's line
    (the first outside dlas_fast), or in a ValueError when the section sets
    ``strict_options: true`` (a typo is never silently ignored)."""
    valid = set(known) | TRAINER_KEYS
    unknown = sorted(k for k in opt if k not in valid)
    if not unknown:
        return
    names = []
    for key in unknown:
        close = difflib.get_close_matches(str(key), sorted(valid), n=1, cutoff=0.75)
        names.append(f"{key} (did you mean `{close[0]}`?)" if close else str(key))
    message = f"{dataset}: option(s) {', '.join(names)} are not used by this dataset"
    if opt.get("strict_options", False):
        raise ValueError(f"{message} (strict_options is set)")
    warnings.warn(message, UserWarning, stacklevel=caller_stacklevel())


def caller_stacklevel() -> int:
    """The ``stacklevel`` of a warning issued here that points at the first frame
    outside the dlas_fast package: the user's line, however deep the call."""
    level, frame = 1, sys._getframe(1)
    while frame is not None and frame.f_globals.get("__name__", "").startswith("dlas_fast"):
        level += 1
        frame = frame.f_back
    return level


# ---- Bounds on sizes and counts ------------------------------------------------------
# Options that size an allocation are checked here, by name and with the allowed range,
# before anything is allocated (the native loaders check the same bounds again).

#: The largest image side an option may ask for (``target_size``, ``min_tile_size``,
#: ``scale``, ``force_multiple``, ``hq_tile_size * 2^num_scales``): a float32 RGB plane
#: of 8192 x 8192 is 805 MB, and an item holds several.
MAX_SIDE: int = LIMITS["max_side"]
#: The most items one batch may hold (``batch_size``; times ``num_frames`` for
#: MultiFrameDataset).
MAX_BATCH_ITEMS: int = LIMITS["max_batch_items"]
#: The largest entry of ``weights`` / ``dataroot_GT_weights``.
MAX_WEIGHT: int = LIMITS["max_weight"]
#: The most ``fixed_corruptions``, and the largest ``num_corrupts_per_image``.
MAX_CORRUPTIONS: int = LIMITS["max_corruptions"]
#: The largest ``blur_magnitude`` (fullimage).
MAX_BLUR_MAGNITUDE: int = LIMITS["max_blur_magnitude"]


def int_option(
    opt: Mapping,
    key: str,
    default: int | None = None,
    lo: int = 1,
    hi: int = MAX_SIDE,
    required: bool = False,
) -> int | None:
    """``opt[key]`` (or `default`) as an int in ``lo..=hi``, else a ValueError naming
    the option and the range. None stays None (an option left unset) unless
    `required`."""
    value = opt.get(key, default)
    if value is None:
        if required:
            raise ValueError(f"option {key!r}: required, an integer from {lo} to {hi}")
        return None
    integral = not isinstance(value, bool) and isinstance(value, numbers.Real) and _integral(value)
    if not integral or not lo <= value <= hi:
        raise ValueError(f"option {key!r}: must be an integer from {lo} to {hi}, got {value!r}")
    return int(value)


def _integral(value) -> bool:
    try:
        return int(value) == value
    except (OverflowError, ValueError):  # inf, nan
        return False


def weights_option(opt: Mapping, key: str, count: int) -> list[int]:
    """``opt[key]`` (default: 1 each) as `count` ints in ``0..=MAX_WEIGHT``, else a
    ValueError naming the option and the range."""
    weights = opt.get(key)
    if weights is None or (isinstance(weights, (list, tuple)) and not weights):
        return [1] * count
    if isinstance(weights, (str, bytes)) or not isinstance(weights, Iterable):
        raise ValueError(f"option {key!r}: must be a list of integers, got {weights!r}")
    weights = list(weights)
    if len(weights) != count:
        raise ValueError(
            f"option {key!r}: {len(weights)} weights for {count} paths; give one per path"
        )
    for w in weights:
        if isinstance(w, bool) or not isinstance(w, numbers.Real) or not _integral(w):
            bad = True
        else:
            bad = not 0 <= w <= MAX_WEIGHT
        if bad:
            raise ValueError(
                f"option {key!r}: each weight must be an integer from 0 to {MAX_WEIGHT}, got {w!r}"
            )
    return [int(w) for w in weights]


def wants_usm(opt: Mapping) -> bool:
    """Whether the dataset outputs ``hq_usm``: ``gt_usm`` with a degradation."""
    return opt.get("degradation") is not None and bool(opt.get("gt_usm", False))


def check_degradation(opt: Mapping, dataset: str, supported: bool = True) -> None:
    """Rejects ``degradation`` on a dataset that does not `support` it."""
    if opt.get("degradation") is not None and not supported:
        raise ValueError(f"option 'degradation': {dataset} does not support it")
