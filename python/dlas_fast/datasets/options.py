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
    """Warns, naming them, about keys of `opt` that neither `dataset` nor the trainer use."""
    unknown = sorted(set(opt) - set(known) - TRAINER_KEYS)
    if unknown:
        warnings.warn(
            f"{dataset}: option(s) {', '.join(unknown)} are not used by this dataset",
            UserWarning,
            stacklevel=3,
        )
