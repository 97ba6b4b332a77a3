"""What every native-loading dataset shares: the epoch that keys its random draws, the
``on_error`` policy for samples that cannot be loaded, errors that a DataLoader worker
can send to the main process, and pickling for spawned DataLoader workers."""

from __future__ import annotations

import functools
import logging
import os
import secrets
import warnings
from collections.abc import Callable
from typing import NamedTuple

import torch

from dlas_fast._native import DlasError, MixedSizesError
from dlas_fast.corruptor import SharedEpoch
from dlas_fast.datasets.batch import Batch, zeros_tensor
from dlas_fast.datasets.shm_pool import Slot, SlotPool, release

#: What a sample that cannot be loaded raises: a file that is missing, unreadable,
#: undecodable, or whose metadata is damaged. (Bad options raise ValueError instead.)
BAD_INPUT = (DlasError, OSError)

log = logging.getLogger("dlas_fast")

#: How many bad samples in a row ``on_error='skip'`` tries in place of a bad one
#: before it gives up (a bad chunk-level file counts once for its whole chunk).
MAX_SUBSTITUTES = 64


def file_error(cls: type, path, message: str) -> BaseException:
    """``cls("<path>: <message>")`` with its ``path`` attribute set, as the native
    errors about a file carry it."""
    path = os.fspath(path)
    err = cls(f"{path}: {message}")
    err.path = path
    return err


def _file_of(err: BaseException) -> str:
    """The file an error concerns: its ``path``, else the start of its message (the
    path, for the native errors), else the message."""
    path = getattr(err, "path", None)
    if path:
        return os.fspath(path)
    msg = str(err)
    return msg.split(": ", 1)[0] if ": " in msg else msg


def _is_panic(err: BaseException) -> bool:
    """True for pyo3's PanicException: a Rust panic, surfaced in Python."""
    kind = type(err)
    return kind.__name__ == "PanicException" and kind.__module__ == "pyo3_runtime"


def _panics_as_errors(method: Callable) -> Callable:
    """`method`, with a Rust panic raised as a :class:`DlasError` carrying its message.

    A panic surfaces as pyo3's PanicException, whose module (``pyo3_runtime``) cannot
    be imported: a DataLoader worker could not pickle its class to send the error to
    the main process, which would then wait for ever.
    """
    if getattr(method, "_panics_as_errors", False):
        return method

    @functools.wraps(method)
    def guarded(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except BaseException as e:
            if not _is_panic(e):
                raise
            mode = getattr(self, "MODE", type(self).__name__)
            raise DlasError(
                f"{mode}: dlas_fast's native code failed while loading (a bug: please report "
                f"it with this message): {e}"
            ) from e

    guarded._panics_as_errors = True
    return guarded


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
    read files call :meth:`_init_errors` too and load through :meth:`_guarded`. Their
    ``__getitem__`` and ``__getitems__`` raise a Rust panic as a :class:`DlasError`
    (see :func:`_panics_as_errors`).
    """

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        for name in ("__getitem__", "__getitems__"):
            method = cls.__dict__.get(name)
            if method is not None:
                setattr(cls, name, _panics_as_errors(method))

    def _init_seed(self) -> None:
        """Without ``random_seed``, draws one, reports it and keeps it in ``self.opt``:
        every draw is then keyed on ``(seed, epoch, index)`` in this process and its
        workers, and setting the reported seed repeats the run. A train-phase dataset
        (``phase`` train, the default) takes rank 0's seed on every DDP rank, which is
        a collective call: every rank builds the train set, as in DLAS's trainer. Other
        phases (validation sets, often built on one rank) draw their own."""
        #: Whether the seed was drawn here rather than set in the options: a loader's
        #: ``load_state_dict`` may then replace it with the saved run's.
        self.seed_was_drawn = self.opt.get("random_seed") is None
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
        # Set in a worker by dlas_fast's collate, which torch's default_collate calls
        # for a whole batch (see the datasets' __getitems__).
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
        time: deterministic), with a warning naming the bad file the first time. A bad
        file that a run of items shares (a chunk's ref.jpg or centers.pt) is stepped
        over with its whole run (see :meth:`_substitute`). When no substitute loads
        (:data:`MAX_SUBSTITUTES` bad samples in a row, or the whole dataset tried), a
        DlasError says so."""
        try:
            return load(index)
        except BAD_INPUT as e:
            if self.on_error == "raise":
                raise
            err = e
        n = len(self)
        index = range(n)[index]
        pos, travelled, failures = index, 0, 1
        while True:
            self._skip(err)
            nxt = self._substitute(pos, err) % n
            travelled += (nxt - pos) % n or n
            if travelled >= n:
                raise DlasError(
                    f"on_error='skip': item {index} cannot be loaded and no other item of the "
                    f"{n} can take its place (the whole dataset was searched; the bad files "
                    f"are named in warnings); the last error: {err}"
                ) from err
            if failures > MAX_SUBSTITUTES:
                raise DlasError(
                    f"on_error='skip': item {index} and the {failures - 1} items tried in its "
                    f"place cannot be loaded ({failures} bad samples in a row, named in "
                    f"warnings); the last error: {err}"
                ) from err
            pos = nxt
            try:
                return load(pos)
            except BAD_INPUT as e:
                err = e
                failures += 1

    def _substitute(self, item: int, err: BaseException) -> int:
        """The next item to try in place of `item`, which failed with `err` (may be
        ``len(self)`` or more: it wraps around). Datasets whose items share files
        step over every item that shares the bad one."""
        return item + 1

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
        if isinstance(epoch, bool) or not isinstance(epoch, int) or not 0 <= epoch < 2**63:
            raise ValueError(f"set_epoch: the epoch must be an int in [0, 2**63), got {epoch!r}")
        self._epoch.value = epoch

    def reset_random(self) -> None:
        """DLAS's ``reset_random`` (its FID evaluator calls it before each evaluation so
        that every evaluation sees the same corruptions). Here every draw is already a
        function of ``(random_seed, epoch, index)``, so an item repeats by itself while
        the epoch stays; this rewinds the epoch to 0, whose draws the items then give
        again, in this process and its DataLoader workers."""
        self.set_epoch(0)

    def reseed(self, seed: int) -> None:
        """Makes `seed` the dataset's ``random_seed``, as if its options had set it (a
        resumed run takes the saved run's seed this way). Workers started after this
        call use it; the epoch is kept."""
        if isinstance(seed, bool) or not isinstance(seed, (int, str)):
            raise ValueError(f"reseed: the seed must be an int or a string, got {seed!r}")
        epoch, drawn = self._epoch, getattr(self, "seed_was_drawn", False)
        self.__init__(dict(self.opt, random_seed=seed))
        self._epoch, self.seed_was_drawn = epoch, drawn

    # Native objects are not pickled: a spawned worker rebuilds them (the listings from
    # their caches) and shares the epoch with the main process.
    def __getstate__(self) -> dict:
        return {"opt": self.opt, "epoch": self._epoch,
                "seed_was_drawn": getattr(self, "seed_was_drawn", False)}  # fmt: skip

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["opt"])
        self._epoch = state["epoch"]
        self.seed_was_drawn = state.get("seed_was_drawn", False)


class SharedOutputs(NamedTuple):
    """A batch's tensors in shared memory, made before the native call fills them (see
    :meth:`NativeBatches.__getitems__`)."""

    #: The bytes of the shared-memory storage the tensors view.
    storage: torch.Tensor
    #: The batch's keys and their tensors.
    tensors: dict[str, torch.Tensor]
    #: Keys whose tensors are zeros never written (they travel as their shape alone).
    zeros: frozenset[str]
    #: Whether the storage holds zeros already (fresh shared memory).
    zeroed: bool
    #: The recycled slot the storage is, or None for fresh memory.
    slot: Slot | None
    #: Keys the dataset fills itself (not the native loader's outputs).
    extra: frozenset[str] = frozenset()


#: The torch type of each dtype name of the native loaders' outputs.
_DTYPES = {"float32": torch.float32, "int64": torch.int64, "bool": torch.bool}


class NativeBatches(EpochDataset):
    """A dataset that loads its items through a native loader
    (:class:`dlas_fast._native.Loader`, ``self._loader``): a whole batch in one call.

    ``__getitem__`` and :meth:`__getitems__` are the same for all of them. The loader's
    outputs come back by key (``hq``, ``lq``, ...), and the batch's shared-memory
    tensors are laid out from the loader's own list of outputs. A dataset supplies
    ``_batch_specs`` (the native call's item columns for some indices; may raise a
    bad-input error, which sends the batch item by item) and ``_finish`` (its own keys:
    paths, constants); optionally ``_corrupts`` and ``_extra_outputs``.
    """

    def _batch_specs(self, indices: list[int]) -> dict:
        return {"index": indices}

    def _corrupts(self) -> bool:
        """Whether the loader corrupts the LQ images."""
        return True

    def _extra_outputs(self, n: int) -> dict[str, torch.Tensor]:
        """Keys the dataset adds to a batch of `n` itself (constants), with their
        values."""
        return {}

    def _finish(self, stacked: dict, paths: list, n: int) -> dict:
        """The batch dict: the loader's tensors `stacked` (and any extra outputs), plus
        the dataset's own keys; `paths` are the loaded images' paths."""
        return stacked

    def _load_arrays(self, items: dict, threads: int, shared: SharedOutputs | None) -> dict:
        out, zeroed = None, False
        if shared is not None:
            skip = shared.zeros | shared.extra
            out = {k: t.numpy() for k, t in shared.tensors.items() if k not in skip}
            zeroed = shared.zeroed
        return self._loader.load(
            items,
            self.corruptor.native,
            self._epoch.value,
            threads,
            self._corrupts(),
            out,
            zeroed,
        )

    def _tensors(self, arrays: dict, item: bool = False) -> dict:
        """The loader's arrays as tensors (zeros left to us as zero pages); with
        `item`, those of a batch of one without its batch axis."""
        out = {}
        for k, v in arrays.items():
            if k == "paths":
                continue
            if isinstance(v, tuple):
                out[k] = zeros_tensor(v[1:] if item else v)
            else:
                t = torch.from_numpy(v)
                out[k] = t[0] if item else t
        return out

    def _shared_outputs(self, n: int) -> SharedOutputs | None:
        """Tensors for a batch of `n`, when the options fix the sizes, else None.
        They view one shared-memory storage (a recycled slot, or fresh zeroed memory),
        except outputs that are always zeros (e.g. the refs without ``need_ref``): those
        are zeros whose pages are never written
        (:func:`~dlas_fast.datasets.batch.zeros_tensor`) and travel to the main process
        as their shape alone."""
        specs = self._loader.outputs(n, self.corruptor.native)
        if specs is None:
            return None
        extra = self._extra_outputs(n)
        written = [s for s in specs if not s.zeros]
        layout = [(tuple(s.shape), _DTYPES[s.dtype]) for s in written]
        layout += [(tuple(v.shape), v.dtype) for v in extra.values()]
        try:
            flat, views, zeroed, slot = self._shared_block(layout)
        except (AttributeError, RuntimeError):
            # A torch without this (private) allocator, or no shared memory: batches
            # go the way torch's own collate sends them.
            self.collated_as_is = False
            return None
        try:
            views = iter(views)
            tensors = {}
            for s in specs:
                tensors[s.key] = zeros_tensor(tuple(s.shape)) if s.zeros else next(views)
            for k, v in extra.items():
                tensors[k] = next(views)
                tensors[k].copy_(v)
        except BaseException:
            release(slot)
            raise
        zeros = frozenset(s.key for s in specs if s.zeros)
        return SharedOutputs(flat, tensors, zeros, zeroed, slot, frozenset(extra))

    def _stack(self, arrays: dict, n: int, shared: SharedOutputs | None) -> dict:
        if shared is not None:
            stacked = dict(shared.tensors)
        else:
            stacked = self._tensors(arrays)
            stacked.update(self._extra_outputs(n))
        return self._finish(stacked, arrays["paths"], n)

    #: The order of an item's keys, where it is not the batch's (DLAS's own).
    ITEM_ORDER: tuple[str, ...] = ()

    def _item(self, index: int) -> dict:
        """Item `index`: a batch of one, without its batch axis."""
        index = range(len(self))[index]  # negative indices count from the end
        arrays = self._load_arrays(self._batch_specs([index]), 1, None)
        stacked = self._tensors(arrays, item=True)
        stacked.update({k: v[0] for k, v in self._extra_outputs(1).items()})
        item = self._finish_item(stacked, arrays["paths"])
        order = [k for k in self.ITEM_ORDER if k in item] + [
            k for k in item if k not in self.ITEM_ORDER
        ]
        return {k: item[k][0] if isinstance(item[k], list) else item[k] for k in order}

    def _finish_item(self, stacked: dict, paths: list) -> dict:
        """The item dict of a batch of one (lists of one are unwrapped after)."""
        return self._finish(stacked, paths, 1)

    def __getitem__(self, index: int) -> dict:
        return self._guarded(index, self._item)

    def __getitems__(self, indices: list[int]) -> list[dict]:
        """A whole batch in one native call (the DataLoader calls this when batching).

        Returns the per-item dicts (views into the batch tensors, what a custom
        ``collate_fn`` receives) as a :class:`~dlas_fast.datasets.batch.Batch` that
        also carries the stacked batch, which torch's ``default_collate`` and
        :func:`dlas_fast.datasets.batch.collate` hand over without copying. Decodes on
        one thread inside a DataLoader worker, on every core in the main process. Items
        of different sizes, or a bad sample, send the batch item by item (where a bad
        sample is substituted, or raises under ``on_error='raise'``).
        """
        indices = list(indices)
        n = len(indices)
        try:
            items = self._batch_specs(indices)
        except BAD_INPUT:
            if self.on_error == "raise":
                raise
            return [self[i] for i in indices]  # a bad sample: item by item, substituted
        in_worker = torch.utils.data.get_worker_info() is not None
        threads = 1 if in_worker else (os.cpu_count() or 1)
        # In a worker whose batches are passed on as they are (dlas_fast's collate, or
        # torch's default_collate of the whole batch), with sizes known up front, the
        # batch is written straight into shared memory (a recycled slot, or fresh zeroed
        # memory): nothing is copied on the way to the main process.
        shared = self._shared_outputs(n) if in_worker and self.collated_as_is else None
        slot = None if shared is None else shared.slot
        try:
            arrays = self._load_arrays(items, threads, shared)
        except MixedSizesError:
            release(slot)
            return [self[i] for i in indices]  # items of different sizes: item by item
        except BAD_INPUT:
            release(slot)
            if self.on_error == "raise":
                raise
            return [self[i] for i in indices]  # a bad sample: item by item, substituted
        except BaseException:
            release(slot)
            raise
        stacked = self._stack(arrays, n, shared)
        if shared is None:
            return Batch.of(stacked, n, None, self)
        return Batch.of(stacked, n, shared.storage, self, zeros=shared.zeros, slot=slot)
