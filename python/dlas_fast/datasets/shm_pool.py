"""Recycled shared memory for batches made in DataLoader worker processes.

A batch made in a worker travels to the main process in shared memory. Fresh shared
memory for every batch costs twice: the worker faults in (and the kernel zeroes) every
page of it, and the main process maps it and faults its pages in again. On a 2-core
machine that was most of the cost of a worker batch of 256² float32 images.

So each worker keeps a few shared-memory *slots* and writes its batches into them. A
slot's first 64 bytes hold its state: ``BUSY`` from the moment the worker takes it,
``FREE`` once the main process holds no tensor over it any more. The main process maps
each slot once (it arrives with the slot's first batch, through torch's own
file-descriptor passing) and keeps the mapping, so later batches in that slot arrive
as a few bytes naming it. The tensors handed to the training loop view a numpy array
made for that batch alone; when the last of them is freed (however many views, copies
to the GPU or pinned memory came first), a finalizer marks the slot ``FREE`` and the
worker may write the next batch into it. A worker that finds no free slot (the loop
keeps old batches) takes fresh shared memory as before, so nothing is ever
overwritten while in use.
"""

from __future__ import annotations

import os
import threading
import uuid
import weakref

import numpy as np
import torch

from dlas_fast._native import prefault

FREE, BUSY = 0, 1
# Bytes before a slot's data: its state word, then a word the main process sets to 1
# once it has the slot mapped, padded to keep the data 64-byte aligned.
HEADER = 64
# Slots a worker keeps at most: the prefetched batches, the one the loop holds and
# one being sent need about four.
MAX_SLOTS = 6


def _aligned(shapes) -> tuple[list[int], int]:
    """Each (shape, dtype)'s byte size rounded up to 64, and their total."""
    sizes = []
    for shape, dtype in shapes:
        n = dtype.itemsize
        for d in shape:
            n *= d
        sizes.append((n + 63) // 64 * 64)
    return sizes, sum(sizes)


def _carve(flat: torch.Tensor, start: int, shapes, sizes) -> tuple:
    """Tensors of these (shape, dtype)s laid one after another in `flat` from byte
    `start`, each at its size from `_aligned`."""
    views, offset = [], start
    for (shape, dtype), size in zip(shapes, sizes):
        n = dtype.itemsize
        for d in shape:
            n *= d
        views.append(flat[offset : offset + n].view(dtype).view(shape))
        offset += size
    return tuple(views)


def fresh_block(shapes) -> tuple[torch.Tensor, tuple]:
    """Tensors of these (shape, dtype)s viewing one fresh shared-memory storage (zero
    pages, faulted in at once), and a byte tensor over the whole storage."""
    sizes, total = _aligned(shapes)
    storage = torch.UntypedStorage._new_shared(total)
    flat = torch.empty(0, dtype=torch.uint8).set_(storage, 0, (total,))
    # All its pages faulted in at once: cheaper than a fault per page as it is written.
    prefault(flat.data_ptr(), flat.numel())
    return flat, _carve(flat, 0, shapes, sizes)


class Slot:
    """One recycled shared-memory block of a worker's pool."""

    def __init__(self, token: str, ident: int, nbytes: int) -> None:
        self.token, self.ident = token, ident
        self.flat, _ = fresh_block([((HEADER + nbytes,), torch.uint8)])
        self.capacity = nbytes
        self._state = self.flat.numpy()[:16].view(np.int64)

    @property
    def free(self) -> bool:
        return int(self._state[0]) == FREE

    @property
    def mapped(self) -> bool:
        """Whether the main process has the slot mapped: until then, every batch in
        it carries the storage (a message that never arrived cannot leave a later one
        naming a slot the main process does not know)."""
        return int(self._state[1]) == 1

    def take(self) -> None:
        self._state[0] = BUSY

    def release(self) -> None:
        """Gives the slot back unsent (the batch failed)."""
        self._state[0] = FREE


class SlotPool:
    """A worker's slots (see the module doc). Made lazily in the worker process."""

    def __init__(self) -> None:
        self.token = f"{os.getpid()}:{uuid.uuid4().hex}"
        self.slots: list[Slot] = []

    def block(self, shapes) -> tuple[torch.Tensor, tuple, bool, Slot | None]:
        """Tensors of these (shape, dtype)s in a free slot (old contents: the caller
        writes every value), or in fresh zeroed shared memory when every slot is in
        use: (byte tensor over the storage, tensors, zeroed, slot or None)."""
        sizes, total = _aligned(shapes)
        fits = [s for s in self.slots if s.capacity >= total and s.free]
        if fits:
            slot = min(fits, key=lambda s: s.capacity)
        elif len(self.slots) < MAX_SLOTS:
            slot = Slot(self.token, len(self.slots), total)
            self.slots.append(slot)
        else:
            flat, views = fresh_block(shapes)
            return flat, views, True, None
        slot.take()
        return slot.flat, _carve(slot.flat, HEADER, shapes, sizes), False, slot


def release(slot: Slot | None) -> None:
    """Gives back the slot (if any) of a batch that failed before it was sent."""
    if slot is not None:
        slot.release()


# Main process: the slots mapped so far, by (pool token, slot id). A forked child
# (a worker, another loader's worker) starts without them: it must neither keep them
# mapped nor free them.
_MAPPED: dict[tuple[str, int], torch.Tensor] = {}
_LOCK = threading.Lock()
os.register_at_fork(after_in_child=_MAPPED.clear)


def _alive(token: str) -> bool:
    try:
        os.kill(int(token.split(":", 1)[0]), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, ValueError):
        pass
    return True


def _set_free(state: np.ndarray, owner: int) -> None:
    # Only in the process that received the batch: a forked copy of it collecting the
    # same garbage must not free a slot its parent may still use.
    if os.getpid() == owner:
        state[0] = FREE


def leased(token: str, ident: int, flat: torch.Tensor | None) -> torch.Tensor:
    """In the main process: a byte tensor over slot `ident` of pool `token` whose
    death (with every view of it) marks the slot free. `flat` is the slot's storage
    until the slot is known to be mapped here, else None."""
    if token.startswith(f"{os.getpid()}:"):
        raise RuntimeError(
            "dlas_fast: a worker batch in shared-memory slot cannot be copied in the "
            "worker that made it (copy it in the main process, or collate a list of "
            "the batch's items, which stacks them anew)"
        )
    key = (token, ident)
    with _LOCK:
        if flat is not None:
            for old in [k for k in list(_MAPPED) if not _alive(k[0])]:
                del _MAPPED[old]  # tensors still in use keep their own mapping alive
            _MAPPED[key] = flat
        mapped = _MAPPED.get(key)
    if mapped is None:
        raise RuntimeError(
            f"dlas_fast: a batch arrived in shared-memory slot {ident} of worker pool "
            f"{token}, which this process never received"
        )
    whole = mapped.numpy()
    state = whole[:16].view(np.int64)
    state[1] = 1  # mapped: later batches in this slot may leave the storage out
    lease = whole[:]  # an array for this batch alone: its death frees the slot
    out = torch.from_numpy(lease)
    weakref.finalize(lease, _set_free, state, os.getpid())
    return out
