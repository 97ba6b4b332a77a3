"""The loader ``create_dataloader`` returns: it keys every epoch's draws and shuffle,
and saves and restores its place in a run exactly (docs/loading.md, "Resuming a run").

The state is a small dict of plain values (JSON-able): the epoch in progress, how many
batches of it were handed out, the dataset's seed and length, and what the sampler is.
No index list is kept: a shuffled epoch's order is a function of the seed and the
epoch, so it is made again on resume, and the batches already handed out are left out
without being loaded.
"""

from __future__ import annotations

import itertools
import warnings

from dlas_fast._torch import require

torch = require()
from torch.utils.data import DataLoader  # noqa: E402

from dlas_fast.samplers import (  # noqa: E402
    DistIterSampler,
    ResumableSampler,
    base_dataset,
    option_seed,
)

#: The ``format`` of a state dict this version writes and reads.
STATE_FORMAT = "dlas_fast.loader/1"


#: Samplers whose order is a function of their epoch (and seed): what a state can
#: restore. Another sampler's order may differ after a resume (torch's RandomSampler
#: draws from the global generator).
_KEYED_SAMPLERS = (ResumableSampler, DistIterSampler, torch.utils.data.DistributedSampler,
                   torch.utils.data.SequentialSampler)  # fmt: skip

#: The largest epoch: the shared epoch is a signed 64-bit integer.
MAX_EPOCH = 2**63 - 1


def _sampler_state(sampler) -> dict:
    """What decides the sampler's order, besides its epoch."""
    state = {"type": type(sampler).__name__}
    if isinstance(sampler, (ResumableSampler, torch.utils.data.DistributedSampler)):
        state.update(num_replicas=int(sampler.num_replicas), rank=int(sampler.rank),
                     shuffle=bool(sampler.shuffle), seed=int(sampler.seed),
                     drop_last=bool(sampler.drop_last))  # fmt: skip
        if getattr(sampler, "follows_dataset_seed", False):
            state["seed"] = "dataset"  # the state's random_seed
    elif isinstance(sampler, DistIterSampler):
        state.update(num_replicas=sampler.num_replicas, rank=sampler.rank,
                     num_samples=sampler.num_samples)  # fmt: skip
    return state


class _Resuming:
    """The loader's batch sampler (or sampler) that leaves out the first batches of a
    resumed epoch. Its length is the whole epoch's, as the loader's stays."""

    def __init__(self, loader: EpochDataLoader, base) -> None:
        self.loader, self.base = loader, base

    def __iter__(self):
        skip = self.loader._skip_now
        if not skip:
            return iter(self.base)
        return itertools.islice(iter(self.base), skip, None)

    def __len__(self) -> int:
        return len(self.base)


class _Counting:
    """The loader's iterator, counting the batches it hands out in its own
    ``[epoch, batches]`` list (the loader's progress while it is the latest iteration;
    an older iterator counts on without touching a newer state)."""

    def __init__(self, loader: EpochDataLoader, inner, progress: list[int]) -> None:
        self._loader, self._inner, self._progress = loader, inner, progress
        self._left = len(inner) - progress[1]

    def __iter__(self):
        return self

    def __next__(self):
        try:
            batch = next(self._inner)
        except StopIteration:
            if self._progress is self._loader._progress and not self._loader._keeps_place():
                # A loader that does not move on to another epoch (validation) starts
                # its next pass whole: a finished pass is no place to resume from.
                self._progress[1] = 0
            raise
        self._progress[1] += 1
        return batch

    def __len__(self) -> int:
        """The batches this iteration hands out (fewer than ``len(loader)`` when it
        resumes an epoch)."""
        return self._left

    def __getattr__(self, name: str):
        if name in ("_inner", "_loader", "_progress"):  # not set yet (a copy being made)
            raise AttributeError(name)
        return getattr(self._inner, name)


class EpochDataLoader(DataLoader):
    """A DataLoader that sets its dataset's epoch (the key of its random draws) each
    time an epoch starts, and so in its workers, persistent ones included, and that
    can save and restore its place in a run (:meth:`state_dict`,
    :meth:`load_state_dict`, the protocol of torchdata's ``StatefulDataLoader``).

    The epoch: with a sampler that has one (``DistributedSampler``,
    ``DistIterSampler``, :class:`~dlas_fast.samplers.ResumableSampler` given to
    ``create_dataloader``), the sampler's, which DLAS's loop sets with
    ``train_sampler.set_epoch(epoch)`` before each epoch, as torch requires for its
    shuffle; otherwise 0, 1, 2... counted by the loader (with :attr:`counts_epochs`).
    :meth:`set_epoch` sets either.
    """

    _next_epoch = 0
    #: Whether each iteration starts the next epoch (train phase), or the loader keeps
    #: the epoch it was given (other phases: every validation pass sees the same items).
    counts_epochs = True
    #: The sampler create_dataloader made (its epoch follows the loader's count).
    _own_sampler: ResumableSampler | None = None
    #: [epoch, batches handed out] of the latest iteration, or None before the first.
    _progress: list[int] | None = None
    #: (epoch, batches) restored by load_state_dict, waiting for that epoch to start.
    _resume: tuple[int, int] | None = None
    #: Batches the iteration being started leaves out (read by _Resuming).
    _skip_now = 0

    @property
    def _index_sampler(self):
        base = DataLoader._index_sampler.fget(self)
        cached = self.__dict__.get("_resuming")
        if cached is None or cached.base is not base:
            cached = _Resuming(self, base)
            self.__dict__["_resuming"] = cached
        return cached

    def _sampler_with_epoch(self):
        sampler = getattr(self, "sampler", None)
        if sampler is self._own_sampler:
            return None
        has = isinstance(getattr(sampler, "epoch", None), int)
        return sampler if has and hasattr(sampler, "set_epoch") else None

    def set_epoch(self, epoch: int) -> None:
        """Sets the epoch of the next iteration: the sampler's when it has one,
        else the loader's own count. A resume loaded for another epoch is dropped."""
        epoch = _epoch(epoch, "set_epoch")
        if self._resume is not None and self._resume[0] != epoch:
            self._resume = None
        sampler = self._sampler_with_epoch()
        if sampler is not None:
            sampler.set_epoch(int(epoch))
        else:
            self._next_epoch = int(epoch)

    def current_epoch(self) -> int:
        """The epoch the next iteration gives the dataset (see the class doc)."""
        sampler = self._sampler_with_epoch()
        return sampler.epoch if sampler is not None else self._next_epoch

    def _keeps_place(self) -> bool:
        """Whether a finished iteration is a place to resume from: the loader (or its
        sampler) moves on to another epoch, rather than repeating this one."""
        return self._sampler_with_epoch() is not None or self.counts_epochs

    def _per_batch(self) -> int:
        return self.batch_size if self.batch_size is not None else 1

    def __iter__(self):
        epoch = self.current_epoch()
        skip = 0
        if self._resume is not None and self._resume[0] == epoch:
            skip = self._resume[1]
        dataset = base_dataset(self.dataset)
        if hasattr(dataset, "set_epoch"):
            dataset.set_epoch(epoch)
        own = self._own_sampler
        if own is not None:
            # The order is the seed's and the epoch's; a resumed epoch starts where it
            # was left (whole batches), without going through what came before.
            own.set_epoch(epoch, skip=min(skip * self._per_batch(), len(own)))
        else:
            self._skip_now = skip
        try:
            inner = super().__iter__()
        finally:
            self._skip_now = 0
        # Only once the iteration exists: a failed start leaves the place as it was.
        self._resume = None
        if self._sampler_with_epoch() is None and self.counts_epochs:
            self._next_epoch = epoch + 1
        progress = [epoch, skip]
        self._progress = progress
        return _Counting(self, inner, progress)

    def state_dict(self) -> dict:
        """Where this loader is in the run, as plain values (JSON-able): the epoch in
        progress (or next to start), the batches of it handed out so far, the
        dataset's seed and length, the batch size and what the sampler is. Saved
        with a checkpoint; :meth:`load_state_dict` in a new process continues with
        the next batch, bit for bit."""
        upcoming = self.current_epoch()
        # The epoch the latest iteration ran, if nothing has moved the loader since.
        counted = self._sampler_with_epoch() is None and self.counts_epochs
        latest = upcoming - 1 if counted else upcoming
        if self._resume is not None and self._resume[0] == upcoming:
            epoch, batches = self._resume
        elif self._progress is not None and self._progress[0] == latest:
            epoch, batches = self._progress
        else:
            epoch, batches = upcoming, 0
        return {
            "format": STATE_FORMAT,
            "epoch": int(epoch),
            "batches": int(batches),
            "batch_size": self.batch_size,
            "drop_last": bool(self.drop_last),
            "items": len(self.dataset),
            "random_seed": option_seed(self.dataset),
            "sampler": _sampler_state(self.sampler),
        }

    def load_state_dict(self, state: dict) -> None:
        """Continues the run that :meth:`state_dict` saved: the next iteration is
        that epoch, without the batches already handed out (an epoch that was
        finished gives none), and the dataset takes the saved seed when its own was
        drawn rather than set. Call before iterating. A state from another setup
        (batch size, dataset length, sampler, world size or rank, a set seed that
        differs) is a ValueError naming what differs."""
        if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
            got = state.get("format") if isinstance(state, dict) else type(state).__name__
            raise ValueError(f"load_state_dict: not a dlas_fast loader state ({got!r})")
        epoch, batches = _count(state, "epoch", MAX_EPOCH), _count(state, "batches")
        mine = self.state_dict()
        for key in ("batch_size", "drop_last", "items"):
            if state.get(key) != mine[key]:
                raise ValueError(
                    f"load_state_dict: the state was saved with {key}={state.get(key)!r}, "
                    f"this loader has {key}={mine[key]!r}"
                )
        theirs, ours = state.get("sampler"), mine["sampler"]
        if theirs != ours:
            raise ValueError(
                f"load_state_dict: the state was saved with the sampler {theirs}, this "
                f"loader has {ours}"
            )
        per_epoch = len(self)
        if batches > per_epoch:
            raise ValueError(
                f"load_state_dict: 'batches' is {batches}, more than the {per_epoch} of an epoch"
            )
        self._set_dataset_seed(state.get("random_seed"), mine["random_seed"])
        # Workers kept from an earlier iteration hold the dataset as it was.
        iterator = getattr(self, "_iterator", None)
        if iterator is not None:
            shutdown = getattr(iterator, "_shutdown_workers", None)
            if shutdown is not None:
                shutdown()
            self._iterator = None
        self.set_epoch(epoch)
        dataset = base_dataset(self.dataset)
        if hasattr(dataset, "set_epoch"):
            dataset.set_epoch(epoch)
        self._resume = (epoch, batches)
        self._progress = None
        if not isinstance(self.sampler, _KEYED_SAMPLERS):
            warnings.warn(
                f"load_state_dict: the order of the sampler {type(self.sampler).__name__} is "
                "not known to be a function of its epoch; the resumed batches are the "
                "saved run's only if it is (dlas_fast.ResumableSampler, DistributedSampler "
                "and DistIterSampler are)",
                UserWarning,
                stacklevel=2,
            )

    def _set_dataset_seed(self, saved, current) -> None:
        if saved == current:
            return
        if saved is None or current is None:
            raise ValueError(
                f"load_state_dict: the state was saved with random_seed={saved!r}, this "
                f"loader's dataset has random_seed={current!r}"
            )
        dataset = base_dataset(self.dataset)
        if not getattr(dataset, "seed_was_drawn", False):
            raise ValueError(
                f"load_state_dict: the state was saved with random_seed={saved}, this "
                f"dataset's options set random_seed={current}"
            )
        dataset.reseed(saved)


def _count(state: dict, key: str, most: int | None = None) -> int:
    value = state.get(key)
    bad = isinstance(value, bool) or not isinstance(value, int) or value < 0
    if bad or (most is not None and value > most):
        bound = "" if most is None else f" and <= {most}"
        raise ValueError(
            f"load_state_dict: {key!r} must be a count (an int >= 0{bound}), got {value!r}"
        )
    return value


def _epoch(epoch, what: str) -> int:
    if isinstance(epoch, bool) or not isinstance(epoch, int) or not 0 <= epoch <= MAX_EPOCH:
        raise ValueError(f"{what}: the epoch must be an int in [0, 2**63), got {epoch!r}")
    return epoch
