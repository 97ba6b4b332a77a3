"""What every native-loading dataset shares: the epoch that keys its random draws, and
pickling for spawned DataLoader workers."""

from __future__ import annotations

import torch

from dlas_fast.corruptor import SharedEpoch


class EpochDataset(torch.utils.data.Dataset):
    """A dataset built from an ``opt`` dict whose random draws are keyed on
    ``(random_seed, epoch, item index)``.

    Subclasses set ``self.opt`` and call :meth:`_init_epoch` in ``__init__``.
    """

    def _init_epoch(self) -> None:
        self._epoch = SharedEpoch()
        # Set in a worker by dlas_fast's collate (see the datasets' __getitems__).
        self.collated_as_is = False

    @property
    def epoch(self) -> int:
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
