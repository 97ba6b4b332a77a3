"""What every native-loading dataset shares: the epoch that keys its random draws, the
``on_error`` policy for samples that cannot be loaded, and pickling for spawned
DataLoader workers."""

from __future__ import annotations

import logging
import os
import secrets
import warnings
from collections.abc import Callable

import torch

from dlas_fast._native import DlasError
from dlas_fast.corruptor import SharedEpoch
from dlas_fast.datasets.shm_pool import SlotPool

#: What a sample that cannot be loaded raises: a file that is missing, unreadable,
#: undecodable, or whose metadata is damaged. (Bad options raise ValueError instead.)
BAD_INPUT = (DlasError, OSError)

log = logging.getLogger("dlas_fast")

#: How many following items ``on_error='skip'`` tries in place of a bad one.
MAX_SUBSTITUTES = 64


def _file_of(err: Exception) -> str:
    """The file an error names (its message starts with the path), else the message."""
    msg = str(err)
    return msg.split(": ", 1)[0] if ": " in msg else msg


def shared_seed(collective: bool = True) -> int:
    """A fresh 32-bit seed; with `collective`, in an initialised ``torch.distributed``
    group of several processes, rank 0's, sent to every rank (a collective call: every
    rank must make it, as every rank builds the train set in DLAS's trainer)."""
    seed = secrets.randbits(32)
    dist = torch.distributed
    if collective and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        box = [seed]
        dist.broadcast_object_list(box, src=0)
        seed = int(box[0])
    return seed


class EpochDataset(torch.utils.data.Dataset):
    """A dataset built from an ``opt`` dict whose random draws are keyed on
    ``(random_seed, epoch, item index)``.

    Subclasses set ``self.opt`` and call :meth:`_init_epoch` in ``__init__``; those that
    read files call :meth:`_init_errors` too and load through :meth:`_guarded`.
    """

    def _init_seed(self) -> None:
        """Without ``random_seed``, draws one, reports it and keeps it in ``self.opt``:
        every draw is then keyed on ``(seed, epoch, index)`` in this process and its
        workers, and setting the reported seed repeats the run. A train-phase dataset
        (``phase`` train, the default) takes rank 0's seed on every DDP rank, which is
        a collective call: every rank builds the train set, as in DLAS's trainer. Other
        phases (validation sets, often built on one rank) draw their own."""
        if self.opt.get("random_seed") is None:
            collective = self.opt.get("phase", "train") == "train"
            seed = shared_seed(collective)
            self.opt["random_seed"] = seed
            dist = torch.distributed
            if collective and dist.is_available() and dist.is_initialized():
                if dist.get_rank() != 0:
                    return  # one seed for all: rank 0 reports it
            log.warning(
                "%s: no random_seed given; drew random_seed=%d (set it in the dataset "
                "options to repeat this run's augmentations)",
                getattr(self, "MODE", type(self).__name__),
                seed,
            )

    def _init_epoch(self) -> None:
        self._epoch = SharedEpoch()
        # Set in a worker by dlas_fast's collate (see the datasets' __getitems__).
        self.collated_as_is = False
        self._slot_pool = None

    def _shared_block(self, shapes):
        """Tensors of these (shape, dtype)s for a batch this worker sends as it is:
        (byte tensor over their shared memory, tensors, zeroed, slot or None), from
        this worker's recycled slots (see :mod:`dlas_fast.datasets.shm_pool`)."""
        pool = self._slot_pool
        if pool is None or not pool.token.startswith(f"{os.getpid()}:"):
            pool = self._slot_pool = SlotPool()
        return pool.block(shapes)

    def _init_errors(self) -> None:
        """Reads ``on_error``: ``"skip"`` (default) or ``"raise"``."""
        policy = self.opt.get("on_error", "skip")
        if policy not in ("skip", "raise"):
            raise ValueError(f"option 'on_error': must be 'skip' or 'raise', got {policy!r}")
        self.on_error = policy
        #: The files skipped so far in this process, in the order they were met.
        self.skipped_files: list[str] = []

    def _guarded(self, index: int, load: Callable[[int], dict]) -> dict:
        """``load(index)``; when that sample cannot be loaded and ``on_error`` is
        ``"skip"``, the first of the items after it that loads (the same one every
        time: deterministic), with a warning naming the bad file the first time."""
        try:
            return load(index)
        except BAD_INPUT as e:
            if self.on_error == "raise":
                raise
            err = e
        n = len(self)
        index = range(n)[index]
        for step in range(1, min(n, MAX_SUBSTITUTES + 1)):
            self._skip(err)
            try:
                return load((index + step) % n)
            except BAD_INPUT as e:
                err = e
        self._skip(err)
        raise DlasError(
            f"on_error='skip': item {index} and the {min(n, MAX_SUBSTITUTES + 1) - 1} items "
            f"after it cannot be loaded; the last error: {err}"
        ) from err

    def _skip(self, err: Exception) -> None:
        name = _file_of(err)
        if name in self.skipped_files:
            return
        self.skipped_files.append(name)
        warnings.warn(
            f"{getattr(self, 'MODE', type(self).__name__)}: a sample cannot be loaded and is "
            f"replaced by another one (on_error='skip'): {err}",
            UserWarning,
            stacklevel=4,
        )

    @property
    def epoch(self) -> int:
        """The epoch that keys this dataset's random draws (see :meth:`set_epoch`)."""
        return self._epoch.value

    def set_epoch(self, epoch: int) -> None:
        """Sets the epoch that keys the random draws, in this process and in the
        DataLoader workers (forked, spawned or persistent), like a DistributedSampler's
        ``set_epoch``. ``dlas_fast.create_dataloader``'s loader calls it each epoch."""
        self._epoch.value = epoch

    # Native objects are not pickled: a spawned worker rebuilds them (the listings from
    # their caches) and shares the epoch with the main process.
    def __getstate__(self) -> dict:
        return {"opt": self.opt, "epoch": self._epoch}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["opt"])
        self._epoch = state["epoch"]
