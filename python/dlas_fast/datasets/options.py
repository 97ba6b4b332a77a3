"""Reading DLAS option dicts: defaults, and a warning for keys nobody uses."""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping

# Keys DLAS's trainer puts in a dataset section; every dataset accepts them (SPEC §8).
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

# The shape options every dataset over `paths` reads (SPEC §4-5).
SHAPE_KEYS = frozenset({"paths", "weights", "target_size", "force_multiple", "scale"})

# The corruptor's options (SPEC §7).
CORRUPTOR_KEYS = frozenset(
    {
        "fixed_corruptions",
        "random_corruptions",
        "num_corrupts_per_image",
        "corruption_blur_scale",
        "cosine_bias",
        "random_seed",
    }
)


def warn_unknown(opt: Mapping, known: Iterable[str], dataset: str) -> None:
    """Names the keys of `opt` that neither `dataset` nor the trainer use: in a warning,
    or in a ValueError when the section sets ``strict_options: true`` (a typo is never
    silently ignored)."""
    unknown = sorted(set(opt) - set(known) - TRAINER_KEYS)
    if not unknown:
        return
    message = f"{dataset}: option(s) {', '.join(unknown)} are not used by this dataset"
    if opt.get("strict_options", False):
        raise ValueError(f"{message} (strict_options is set)")
    warnings.warn(message, UserWarning, stacklevel=3)
