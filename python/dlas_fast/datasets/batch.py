"""Batches loaded in one native call, and the collate function that passes them on.

Importing this module also teaches torch's ``default_collate`` to pass such a batch on
the same way (see :class:`Item`), so a plain ``torch.utils.data.DataLoader`` takes the
batch without stacking it again, as :func:`dlas_fast.create_dataloader` does.
"""

from __future__ import annotations

import copy
import mmap
from collections.abc import Sequence

import numpy as np
import torch

from dlas_fast.datasets.shm_pool import leased


class Batch(Sequence):
    """A batch loaded in one native call: ``stacked`` holds the batch tensors.

    As a sequence it is the batch's items (:class:`Item` dicts of views into those
    tensors, made on demand), which is what a custom ``collate_fn`` receives.
    :func:`collate`, and torch's ``default_collate`` given the whole batch, return
    ``stacked`` as it is; anything else collating the items stacks them again (a copy).
    """

    def __init__(
        self,
        stacked: dict,
        n: int,
        storage: torch.Tensor | None = None,
        owner=None,
        zeros: frozenset = frozenset(),
        slot=None,
    ) -> None:
        self.stacked = stacked
        self._n = n
        # Keys of `stacked` whose tensors are all zeros and outside `storage`: sent to
        # the main process as their shape alone.
        self.zeros = zeros
        # A byte tensor over the one shared-memory storage that every tensor of
        # `stacked` views (batches made in worker processes), else None.
        self.storage = storage
        # The dataset that made the batch: told by `collate` that its batches are
        # passed on as they are, so it may write them into shared memory directly.
        self.owner = owner
        # The worker's recycled shared-memory slot that `storage` is, if any
        # (dlas_fast.datasets.shm_pool).
        self.slot = slot

    @classmethod
    def of(
        cls,
        stacked: dict,
        n: int,
        storage: torch.Tensor | None = None,
        owner=None,
        zeros: frozenset = frozenset(),
        slot=None,
    ) -> Batch:
        return cls(stacked, n, storage, owner, zeros, slot)

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, j):
        if isinstance(j, slice):
            return [self[i] for i in range(*j.indices(self._n))]
        if not -self._n <= j < self._n:
            raise IndexError(j)
        return Item({k: v[j] for k, v in self.stacked.items()})


class Item(dict):
    """One item of a :class:`Batch`: a plain ``dict`` of views into the batch tensors.

    Its type is what torch's ``default_collate`` looks up first in
    ``default_collate_fn_map``, where this module registers :func:`collate_items`: a
    whole :class:`Batch` is then passed on as :func:`collate` does, without a copy.
    Pickled or copied, an item is a plain ``dict``.
    """

    __slots__ = ()

    def __reduce__(self):
        return (dict, (dict(self),))


def collate_items(batch, *, collate_fn_map=None):
    """``default_collate``'s function for a sequence whose first element is an
    :class:`Item`: a whole :class:`Batch` (the sequence ``__getitems__`` returned) as
    :func:`collate` returns it; any other sequence of items (reordered, partial, mixed
    with other dicts) as ``default_collate`` collates dicts: a plain ``dict`` of each
    key's collated values.

    A map whose tensor or string entries are not torch's own collates the items too,
    so that those entries apply.
    """
    if isinstance(batch, Batch) and collate_fn_map is not None and _stock(collate_fn_map):
        return collate(batch)
    return {
        key: _torch_collate([d[key] for d in batch], collate_fn_map=collate_fn_map)
        for key in batch[0]
    }


def collate(batch):
    """DataLoader ``collate_fn``: a :class:`Batch` as already stacked, anything else
    through ``torch.utils.data.default_collate``. Since importing this module registers
    :func:`collate_items` with ``default_collate``, the default collate of a plain
    DataLoader does the same with a :class:`Batch`.

    In a worker process the stacked tensors are moved into shared memory here, where
    ``default_collate`` would have allocated them: otherwise the worker's queue feeder
    thread copies them there while pickling, which is slower and races with worker
    shutdown (see docs/loading.md).
    """
    if isinstance(batch, Batch):
        if torch.utils.data.get_worker_info() is None:
            return batch.stacked
        if batch.owner is not None:
            # From now on this worker's batches go to shared memory as they are made
            # (batches that are restacked, e.g. by a custom collate_fn, are copied, so
            # private memory is cheaper for those).
            batch.owner.collated_as_is = True
        if batch.storage is not None:
            return OneStorage(batch.stacked, batch.storage, batch.zeros, batch.slot)
        return {
            k: v.share_memory_() if isinstance(v, torch.Tensor) else v
            for k, v in batch.stacked.items()
        }
    return torch.utils.data.default_collate(batch)


def _stock(collate_fn_map) -> bool:
    """Whether `collate_fn_map` collates tensors and strings as torch's defaults do."""
    return (
        collate_fn_map.get(torch.Tensor) is _collate_tensor_fn
        and collate_fn_map.get(str) is _collate_str_fn
    )


try:
    from torch.utils.data._utils.collate import collate as _torch_collate
    from torch.utils.data._utils.collate import collate_str_fn as _collate_str_fn
    from torch.utils.data._utils.collate import collate_tensor_fn as _collate_tensor_fn
    from torch.utils.data._utils.collate import default_collate_fn_map as _fn_map
except ImportError:  # a torch without the registry: default_collate restacks the items
    pass
else:
    # torch's documented way to extend default_collate: the map, updated in place.
    # Every dataset module with a batch path imports this one, so workers started with
    # `spawn` register it too when they unpickle their dataset.
    _fn_map[Item] = collate_items


class OneStorage(dict):
    """A batch whose tensors all view one shared-memory storage, sent from a worker as
    that one storage: torch passes each storage through its own file-descriptor
    handshake, so one instead of six halves the cost of moving a batch. Unpickled in
    the main process as a plain ``dict`` of the same views."""

    def __init__(
        self, stacked: dict, storage: torch.Tensor, zeros: frozenset = frozenset(), slot=None
    ) -> None:
        super().__init__(stacked)
        self._storage = storage
        # The all-zero tensors themselves: a value a collate function put in their
        # place is sent as it is.
        self._zeros = {k: stacked[k] for k in zeros}
        self._slot = slot

    # Copied in the worker (by a collate_fn that calls default_collate, say), it is a
    # plain dict: its pickled form may only be unpickled in another process.
    def __copy__(self) -> dict:
        return dict(self)

    def __deepcopy__(self, memo) -> dict:
        return copy.deepcopy(dict(self), memo)

    def __reduce__(self):
        base = self._storage.untyped_storage().data_ptr()
        layout, plain, zeros = [], {}, []
        for k, v in self.items():
            if k in self._zeros and v is self._zeros[k]:
                zeros.append((k, v.dtype, tuple(v.shape)))
            elif isinstance(v, torch.Tensor) and v.untyped_storage().data_ptr() == base:
                if v.is_contiguous():
                    layout.append((k, v.dtype, v.storage_offset() * v.element_size(), v.shape))
                else:
                    # A crop, permutation or slice a collate function made of the batch:
                    # a copy of its values (the views rebuilt below are contiguous).
                    plain[k] = v.contiguous()
            else:
                plain[k] = v
        slot = self._slot
        if slot is None:
            return (_views, (self._storage, layout, plain, list(self), zeros))
        # A recycled slot: its storage goes along until the main process has it mapped.
        first = None if slot.mapped else self._storage
        return (_slot_views, (slot.token, slot.ident, first, layout, plain, list(self), zeros))


def _slot_views(token: str, ident: int, first, layout, plain, order, zeros) -> dict:
    return _views(leased(token, ident, first), layout, plain, order, zeros)


def _views(storage: torch.Tensor, layout: list, plain: dict, order: list, zeros=()) -> dict:
    out = dict(plain)
    for key, dtype, offset, shape in layout:
        n = dtype.itemsize
        for d in shape:
            n *= d
        out[key] = storage[offset : offset + n].view(dtype).view(shape)
    for key, dtype, shape in zeros:
        out[key] = zeros_tensor(shape, dtype)
    return {k: out[k] for k in order}


#: Below this many bytes, :func:`zeros_array` leaves the zeros to numpy.
_MAP_ZEROS_FROM = 1 << 18


def zeros_array(shape: tuple, dtype=np.float32) -> np.ndarray:
    """A numpy array of zeros whose pages are not written until used.

    Large ones are anonymous memory maps of their own: the kernel's zero pages, so a
    batch's all-zero ref tensors cost a system call, not a 4 MB memset. (numpy's zeros
    come from calloc, and glibc's calloc serves such sizes from its heap, clearing them,
    once a large block has been freed: it raises its mmap threshold to the size freed.)
    The datasets make the all-zero outputs their native loader leaves to them here.
    """
    dtype = np.dtype(dtype)
    nbytes = dtype.itemsize
    for d in shape:
        nbytes *= d
    if nbytes < _MAP_ZEROS_FROM:
        return np.zeros(shape, dtype)
    return np.frombuffer(mmap.mmap(-1, nbytes), dtype).reshape(shape)


def zeros_tensor(shape: tuple, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """:func:`zeros_array` as a tensor of `dtype`."""
    return torch.from_numpy(zeros_array(shape, torch.empty(0, dtype=dtype).numpy().dtype))
