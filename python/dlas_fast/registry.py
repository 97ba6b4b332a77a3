"""``create_dataset`` / ``create_dataloader``, as DLAS's ``data/__init__.py`` (docs/spec.md §8)."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping

# mode -> "module:Class" (imported on first use, so torch loads only when needed).
_REGISTRY: dict[str, str | Callable] = {
    "single_image_extensible": "dlas_fast.datasets.single_image:SingleImageDataset",
    "multi_frame_extensible": "dlas_fast.datasets.multi_frame:MultiFrameDataset",
    "imagefolder": "dlas_fast.datasets.image_folder:ImageFolderDataset",
    "multiscale": "dlas_fast.datasets.multiscale:MultiScaleDataset",
    "stylegan2": "dlas_fast.datasets.stylegan2:Stylegan2Dataset",
    "torch_dataset": "dlas_fast.datasets.torch_dataset:TorchDataset",
    "fullimage": "dlas_fast.datasets.full_image:FullImageDataset",
}

# DLAS's image modes outside dlas_fast's scope (docs/spec.md §8).
_OUT_OF_SCOPE = ("combined", "paired_frame", "zipfile", "random_dataset", "byol_dataset",
                 "byol_structured_dataset", "random_aug_wrapper")  # fmt: skip

# DLAS's audio and speech modes (data/__init__.py): dlas_fast loads images.
_AUDIO = ("nv_tacotron", "paired_voice_audio", "fast_paired_voice_audio",
          "fast_paired_voice_audio_with_phonemes", "gpt_tts", "unsupervised_audio",
          "unsupervised_audio_with_noise", "preprocessed_mel",
          "grand_conjoined_voice")  # fmt: skip


def register_dataset(mode: str, cls: Callable) -> None:
    """Makes ``create_dataset`` build ``cls(dataset_opt)`` for ``mode``."""
    _REGISTRY[mode] = cls


def known_modes() -> list[str]:
    """The registered dataset mode names, sorted."""
    return sorted(_REGISTRY)


def _resolve(mode: str) -> Callable:
    entry = _REGISTRY.get(mode)
    if entry is None:
        if mode in _OUT_OF_SCOPE or mode in _AUDIO:
            kind = "an audio/speech mode of DLAS" if mode in _AUDIO else "a DLAS mode"
            raise ValueError(
                f"dataset mode {mode!r} is {kind} outside dlas_fast's scope (keep DLAS's "
                f"class for it: dlas_fast.register_dataset({mode!r}, TheClass)); known "
                f"modes: {', '.join(known_modes())}"
            )
        raise ValueError(f"unknown dataset mode {mode!r}; known modes: {', '.join(known_modes())}")
    if isinstance(entry, str):
        module, name = entry.split(":")
        entry = getattr(importlib.import_module(module), name)
        _REGISTRY[mode] = entry
    return entry


def create_dataset(dataset_opt: Mapping, return_collate: bool = False):
    """Builds the dataset named by ``dataset_opt['mode']``.

    With ``return_collate=True`` returns ``(dataset, collate_fn_or_None)``, as DLAS's
    ``train.py`` calls it; the collate function is
    :func:`dlas_fast.datasets.batch.collate` for datasets that load whole batches. Such
    a batch needs no copy with torch's ``default_collate`` either, so a plain
    ``torch.utils.data.DataLoader`` is as fast.
    """
    if "mode" not in dataset_opt:
        raise ValueError(
            f"dataset option 'mode' is required; known modes: {', '.join(known_modes())}"
        )
    dataset = _resolve(dataset_opt["mode"])(dataset_opt)
    if not return_collate:
        return dataset
    # DLAS's trainer passes this collate function on to its DataLoader: for datasets
    # that load whole batches natively, ours hands such batches over without a copy
    # (as torch's default_collate does with them, so None would do as well).
    collate = None
    if callable(getattr(dataset, "__getitems__", None)):
        from dlas_fast.datasets.batch import collate
    return dataset, collate


def get_dataset_debugger(dataset_opt: Mapping):
    """DLAS's dataset debugger hook: none of these modes has one."""
    return None


def create_dataloader(dataset, dataset_opt: Mapping, opt: Mapping | None = None, sampler=None,
                      collate_fn=None, shuffle: bool = True):  # fmt: skip
    """A ``torch.utils.data.DataLoader`` configured as DLAS's ``create_dataloader``.

    Train phase: ``batch_size`` (1 to 65536; divided by the world size when
    ``opt['dist']``; it must divide evenly), ``n_workers``, ``shuffle``,
    ``drop_last=True``, ``pin_memory`` (default: True when CUDA is available; DLAS:
    always True). Other phases:
    ``batch_size`` or 1, no shuffle, no workers. ``persistent_workers: true`` (ours)
    keeps the train loader's workers across epochs. For our datasets that load whole
    batches natively, ``collate_fn`` defaults to :func:`dlas_fast.datasets.batch.collate`,
    which takes such batches without a copy (as torch's ``default_collate`` does, so a
    plain ``torch.utils.data.DataLoader`` gets batches as fast).

    The loader sets the dataset's epoch (which keys its random draws) each time it is
    iterated: the sampler's epoch when the sampler has one (set it each epoch, as
    torch's ``DistributedSampler`` requires), else 0, 1, 2... in the train phase (other
    phases keep theirs, 0 unless set: each validation pass sees the same items);
    ``loader.set_epoch(n)`` sets whichever applies. Its shuffle is
    :class:`~dlas_fast.samplers.ResumableSampler`'s, keyed on the dataset's seed and the
    epoch. ``loader.state_dict()`` / ``loader.load_state_dict(state)`` save and restore
    its place in a run exactly (:class:`~dlas_fast.loader.EpochDataLoader`).
    """
    from dlas_fast._torch import require

    torch = require()
    from dlas_fast.datasets.options import MAX_BATCH_ITEMS, int_option
    from dlas_fast.loader import EpochDataLoader
    from dlas_fast.samplers import ResumableSampler

    if collate_fn is None and callable(getattr(dataset, "__getitems__", None)):
        from dlas_fast.datasets.batch import collate as collate_fn
    phase = dataset_opt.get("phase", "train")
    # DLAS's default is True; without a GPU pinning does nothing but warn, so the
    # default follows the hardware (an explicit setting is passed on as given).
    pin_memory = dataset_opt.get("pin_memory", torch.cuda.is_available())
    if phase == "train":
        batch_size = int_option(dataset_opt, "batch_size", hi=MAX_BATCH_ITEMS, required=True)
        if opt is not None and opt.get("dist", False):
            world = torch.distributed.get_world_size()
            if batch_size % world != 0:
                raise ValueError(
                    f"batch_size {batch_size} is not divisible by the world size {world}"
                )
            batch_size //= world
        workers = dataset_opt.get("n_workers", 0)
        # The shuffle is keyed on the dataset's seed and the epoch (torch's own draws
        # from its global generator): a resumed run makes the same order again.
        own = ResumableSampler(dataset) if sampler is None and shuffle else None
        loader = EpochDataLoader(
            dataset,
            batch_size=batch_size,
            shuffle=False,
            num_workers=workers,
            sampler=sampler if own is None else own,
            drop_last=True,
            pin_memory=pin_memory,
            collate_fn=collate_fn,
            # Ours: workers kept across epochs (the epoch still reaches them).
            persistent_workers=bool(dataset_opt.get("persistent_workers", False)) and workers > 0,
        )
        loader._own_sampler = own
        return loader
    loader = EpochDataLoader(
        dataset,
        batch_size=int_option(dataset_opt, "batch_size", lo=0, hi=MAX_BATCH_ITEMS) or 1,
        shuffle=False,
        num_workers=0,
        pin_memory=pin_memory,
        collate_fn=collate_fn,
    )
    loader.counts_epochs = False
    return loader
