"""``create_dataset`` / ``create_dataloader``, as DLAS's ``data/__init__.py`` (docs/spec.md §8)."""

from __future__ import annotations

import functools
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

# DLAS modes outside dlas_fast's scope (docs/spec.md §8).
_OUT_OF_SCOPE = ("combined", "paired_frame", "zipfile", "random_dataset", "byol_dataset",
                 "byol_structured_dataset", "random_aug_wrapper", "nv_tacotron",
                 "paired_voice_audio", "fast_paired_voice_audio")  # fmt: skip


def register_dataset(mode: str, cls: Callable) -> None:
    """Makes ``create_dataset`` build ``cls(dataset_opt)`` for ``mode``."""
    _REGISTRY[mode] = cls


def known_modes() -> list[str]:
    """The registered dataset mode names, sorted."""
    return sorted(_REGISTRY)


def _resolve(mode: str) -> Callable:
    entry = _REGISTRY.get(mode)
    if entry is None:
        if mode in _OUT_OF_SCOPE:
            raise ValueError(
                f"dataset mode {mode!r} is a DLAS mode outside dlas_fast's scope; "
                f"known modes: {', '.join(known_modes())}"
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


@functools.cache
def _loader_class():
    from dlas_fast._torch import require

    torch = require()

    class EpochDataLoader(torch.utils.data.DataLoader):
        """A DataLoader that sets its dataset's epoch (the key of its random draws) each
        time an epoch starts, and so in its workers, persistent ones included.

        The epoch: with a sampler that has one (``DistributedSampler``,
        ``DistIterSampler``), the sampler's, which DLAS's loop sets with
        ``train_sampler.set_epoch(epoch)`` before each epoch, as torch requires for its
        shuffle; otherwise 0, 1, 2... counted by the loader. :meth:`set_epoch` sets
        either (e.g. on resume).
        """

        _next_epoch = 0

        def _sampler_with_epoch(self):
            sampler = getattr(self, "sampler", None)
            has = isinstance(getattr(sampler, "epoch", None), int)
            return sampler if has and hasattr(sampler, "set_epoch") else None

        def set_epoch(self, epoch: int) -> None:
            """Sets the epoch of the next iteration: the sampler's when it has one,
            else the loader's own count."""
            sampler = self._sampler_with_epoch()
            if sampler is not None:
                sampler.set_epoch(int(epoch))
            else:
                self._next_epoch = int(epoch)

        def current_epoch(self) -> int:
            """The epoch the next iteration gives the dataset (see the class doc)."""
            sampler = self._sampler_with_epoch()
            return sampler.epoch if sampler is not None else self._next_epoch

        def __iter__(self):
            epoch = self.current_epoch()
            if hasattr(self.dataset, "set_epoch"):
                self.dataset.set_epoch(epoch)
            if self._sampler_with_epoch() is None:
                self._next_epoch = epoch + 1
            return super().__iter__()

    return EpochDataLoader


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
    torch's ``DistributedSampler`` requires), else 0, 1, 2...; ``loader.set_epoch(n)``
    sets whichever applies.
    """
    from dlas_fast._torch import require

    torch = require()
    from dlas_fast.datasets.options import MAX_BATCH_ITEMS, int_option

    loader_class = _loader_class()
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
        return loader_class(
            dataset,
            batch_size=batch_size,
            shuffle=shuffle if sampler is None else False,
            num_workers=workers,
            sampler=sampler,
            drop_last=True,
            pin_memory=pin_memory,
            collate_fn=collate_fn,
            # Ours: workers kept across epochs (the epoch still reaches them).
            persistent_workers=bool(dataset_opt.get("persistent_workers", False)) and workers > 0,
        )
    return loader_class(
        dataset,
        batch_size=int_option(dataset_opt, "batch_size", lo=0, hi=MAX_BATCH_ITEMS) or 1,
        shuffle=False,
        num_workers=0,
        pin_memory=pin_memory,
        collate_fn=collate_fn,
    )
