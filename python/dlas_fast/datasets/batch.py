"""Batches loaded in one native call, and the collate function that passes them on."""

from __future__ import annotations

from collections.abc import Sequence

import torch


class Batch(Sequence):
    """A batch loaded in one native call: ``stacked`` holds the batch tensors.

    As a sequence it is the batch's items (dicts of views into those tensors, made on
    demand), so ``default_collate`` works and stacks them again (a copy);
    :func:`collate` returns ``stacked`` as it is.
    """

    def __init__(self, stacked: dict, n: int) -> None:
        self.stacked = stacked
        self._n = n

    @classmethod
    def of(cls, stacked: dict, n: int) -> Batch:
        return cls(stacked, n)

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, j):
        if isinstance(j, slice):
            return [self[i] for i in range(*j.indices(self._n))]
        if not -self._n <= j < self._n:
            raise IndexError(j)
        return {k: v[j] for k, v in self.stacked.items()}


def collate(batch):
    """DataLoader ``collate_fn``: a :class:`Batch` as already stacked, anything else
    through ``torch.utils.data.default_collate``.

    In a worker process the stacked tensors are moved into shared memory here, where
    ``default_collate`` would have allocated them: otherwise the worker's queue feeder
    thread copies them there while pickling, which is slower and races with worker
    shutdown (see the README's loading notes).
    """
    if isinstance(batch, Batch):
        if torch.utils.data.get_worker_info() is None:
            return batch.stacked
        return {
            k: v.share_memory_() if isinstance(v, torch.Tensor) else v
            for k, v in batch.stacked.items()
        }
    return torch.utils.data.default_collate(batch)
