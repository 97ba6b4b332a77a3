"""``DistIterSampler``: the sampler of DLAS's distributed training loop, rank-aware and
epoch-aware, that also hands its epoch to the dataset.

DLAS's trainer builds ``DistIterSampler(train_set, world_size, rank, ratio)`` and calls
``train_sampler.set_epoch(epoch)`` at the start of every epoch. This one takes the same
arguments and yields the same kind of indices: an epoch of ``ratio`` passes over the
dataset, shuffled by a permutation that depends on the epoch alone (so every rank
draws the same one), of which each rank takes every ``num_replicas``-th entry starting
at its rank. Its :meth:`set_epoch` also sets the dataset's epoch, so the dataset's
random draws (crops, flips, corruptions, keyed on ``(random_seed, epoch, index)``)
follow the trainer's epoch in every rank and DataLoader worker.
"""

from __future__ import annotations

import math

from dlas_fast._torch import require

torch = require()
from torch.utils.data import Sampler  # noqa: E402


class DistIterSampler(Sampler):
    """Indices of one rank's share of ``ratio`` shuffled passes over `dataset`.

    ``num_replicas`` and ``rank`` default to the initialised ``torch.distributed``
    group's. Every rank yields ``ceil(len(dataset) * ratio / num_replicas)`` indices.
    """

    def __init__(self, dataset, num_replicas: int | None = None, rank: int | None = None,
                 ratio: int = 100) -> None:  # fmt: skip
        if num_replicas is None or rank is None:
            dist = torch.distributed
            if not (dist.is_available() and dist.is_initialized()):
                raise RuntimeError(
                    "DistIterSampler: give num_replicas and rank, or initialise "
                    "torch.distributed first"
                )
            num_replicas = dist.get_world_size() if num_replicas is None else num_replicas
            rank = dist.get_rank() if rank is None else rank
        if not 0 <= rank < num_replicas:
            raise ValueError(f"DistIterSampler: rank {rank} is not in [0, {num_replicas})")
        if len(dataset) == 0:
            raise ValueError("DistIterSampler: the dataset is empty")
        self.dataset = dataset
        self.num_replicas = int(num_replicas)
        self.rank = int(rank)
        self.epoch = 0
        self.num_samples = math.ceil(len(dataset) * ratio / self.num_replicas)
        self.total_size = self.num_samples * self.num_replicas

    def __iter__(self):
        order = torch.randperm(self.total_size, generator=torch.Generator().manual_seed(self.epoch))
        mine = order[self.rank :: self.num_replicas] % len(self.dataset)
        return iter(mine.tolist())

    def __len__(self) -> int:
        return self.num_samples

    def set_epoch(self, epoch: int) -> None:
        """Sets the epoch of the shuffle and, when it has one, of the dataset."""
        self.epoch = int(epoch)
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(self.epoch)
