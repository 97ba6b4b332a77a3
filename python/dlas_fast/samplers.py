"""Samplers whose order is a function of their epoch (and seed), that hand that epoch to
the dataset and can start an epoch part-way (a resumed run):

* :class:`ResumableSampler`: a shuffled (or ordered) pass over the dataset per epoch,
  keyed on ``(seed, epoch)``, split between ranks like torch's ``DistributedSampler``.
  ``create_dataloader`` shuffles with it; with a plain ``torch.utils.data.DataLoader``,
  ``sampler.set_epoch(epoch, skip=n)`` is all a resumed run needs.
* :class:`DistIterSampler`: the sampler of DLAS's distributed training loop.

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

import hashlib
import math

from dlas_fast._torch import require
from dlas_fast.corruptor import seed_of

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

        self.skip = 0

    def __iter__(self):
        order = torch.randperm(self.total_size, generator=torch.Generator().manual_seed(self.epoch))
        mine = order[self.rank :: self.num_replicas] % len(self.dataset)
        return iter(mine[self.skip :].tolist())

    def __len__(self) -> int:
        return self.num_samples

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        """Sets the epoch of the shuffle and, when it has one, of the dataset; the
        epoch's iterations leave out its first `skip` indices (a resumed epoch)."""
        self.epoch = int(epoch)
        self.skip = _skip(skip, self.num_samples)
        dataset = base_dataset(self.dataset)
        if hasattr(dataset, "set_epoch"):
            dataset.set_epoch(self.epoch)


def _skip(skip, num_samples: int) -> int:
    if isinstance(skip, bool) or not isinstance(skip, int) or not 0 <= skip <= num_samples:
        raise ValueError(f"skip must be an int in [0, {num_samples}], got {skip!r}")
    return skip


def _generator(seed: int, epoch: int) -> torch.Generator:
    """A torch generator keyed on (seed, epoch): the same in every process."""
    key = hashlib.blake2b(f"{seed}:{epoch}".encode(), digest_size=8).digest()
    return torch.Generator().manual_seed(int.from_bytes(key, "little") >> 1)


def base_dataset(dataset):
    """The dataset under wrappers that keep theirs in ``.dataset`` (``Subset``): the
    one whose ``opt`` holds the seed and whose ``set_epoch`` keys the draws."""
    for _ in range(16):
        if hasattr(dataset, "set_epoch") or hasattr(dataset, "opt"):
            return dataset
        inner = getattr(dataset, "dataset", None)
        if inner is None:
            return dataset
        dataset = inner
    return dataset


def option_seed(dataset) -> int | str | None:
    """The dataset's ``random_seed`` as its options hold it (an int or a string; drawn
    when the options had none), or None for a dataset without one."""
    opt = getattr(base_dataset(dataset), "opt", None)
    seed = opt.get("random_seed") if isinstance(opt, dict) else None
    return seed if isinstance(seed, (int, str)) and not isinstance(seed, bool) else None


def dataset_seed(dataset) -> int:
    """:func:`option_seed` as a number (a string seed hashed, as the datasets do), or 0."""
    return seed_of(option_seed(dataset)) or 0


class ResumableSampler(Sampler):
    """Indices of one rank's share of a pass over `dataset`, shuffled by a permutation
    keyed on ``(seed, epoch)`` (in order with ``shuffle=False``): the same order in any
    process, so a resumed run makes it again instead of saving it.

    ``seed`` defaults to the dataset's ``random_seed`` (dlas_fast datasets draw one
    when none is set), else 0, read at each epoch. Ranks split the pass as torch's
    ``DistributedSampler`` does: each takes every ``num_replicas``-th index from its
    rank, after the pass is padded with its own first indices to a multiple of
    ``num_replicas`` (or cut to one, with ``drop_last``). :meth:`set_epoch` also sets
    the dataset's epoch.
    """

    def __init__(self, dataset, shuffle: bool = True, seed: int | None = None,
                 num_replicas: int = 1, rank: int = 0,
                 drop_last: bool = False) -> None:  # fmt: skip
        if isinstance(num_replicas, bool) or not isinstance(num_replicas, int) or num_replicas < 1:
            raise ValueError(
                f"ResumableSampler: num_replicas must be an int >= 1, got {num_replicas!r}"
            )
        if isinstance(rank, bool) or not isinstance(rank, int) or not 0 <= rank < num_replicas:
            raise ValueError(f"ResumableSampler: rank {rank!r} is not in [0, {num_replicas})")
        self.dataset = dataset
        self.shuffle = bool(shuffle)
        self._seed = None if seed is None else int(seed)
        self.num_replicas, self.rank = num_replicas, rank
        self.drop_last = bool(drop_last)
        n = len(dataset)
        if self.drop_last:
            self.num_samples = n // num_replicas
        else:
            self.num_samples = math.ceil(n / num_replicas)
        self.total_size = self.num_samples * num_replicas
        self.epoch = 0
        self.skip = 0

    @property
    def seed(self) -> int:
        """The seed of the shuffle: the one given, else the dataset's ``random_seed``
        as it is now (a dataset that takes a resumed run's seed takes its order too)."""
        return dataset_seed(self.dataset) if self._seed is None else self._seed

    @property
    def follows_dataset_seed(self) -> bool:
        """True when no seed was given: the shuffle's seed is the dataset's."""
        return self._seed is None

    def indices(self, epoch: int) -> torch.Tensor:
        """This rank's whole share of `epoch`, in order."""
        n = len(self.dataset)
        if self.shuffle:
            order = torch.randperm(n, generator=_generator(self.seed, epoch))
        else:
            order = torch.arange(n)
        if self.total_size > n:
            order = order.repeat(math.ceil(self.total_size / n))
        return order[: self.total_size][self.rank :: self.num_replicas]

    def __iter__(self):
        return iter(self.indices(self.epoch)[self.skip :].tolist())

    def __len__(self) -> int:
        return self.num_samples

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        """Sets the epoch of the order and, when it has one, of the dataset; the
        epoch's iterations leave out its first `skip` indices (a resumed epoch: the
        batches handed out times the batch size)."""
        self.epoch = int(epoch)
        self.skip = _skip(skip, self.num_samples)
        dataset = base_dataset(self.dataset)
        if hasattr(dataset, "set_epoch"):
            dataset.set_epoch(self.epoch)
