"""``single_image_extensible``: SingleImageDataset over chunked datasets (docs/spec.md §4-5).

Each item is one tile. Decoding, resizing, the LQ synthesis with its corruptions and
the float conversion run in one native call with the GIL released; the chunk index
lives in native memory and its cache is rebuilt when the tree changes (docs/spec.md §3). A
chunk's ref.jpg is decoded once and kept while its tiles are read.

Corruptions are keyed on ``(random_seed, epoch, item index)`` (see
:mod:`dlas_fast.corruptor`): the epoch is set with :meth:`SingleImageDataset.set_epoch`,
which ``dlas_fast.create_dataloader``'s loader calls at the start of every epoch.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import torch

from dlas_fast._native import (
    DlasError,
    RefCache,
    check_shape,
    load_single_batch,
    load_single_item,
)
from dlas_fast.corruptor import ImageCorruptor
from dlas_fast.datasets.base import NativeBatches, SharedOutputs, file_error
from dlas_fast.datasets.batch import zeros_tensor
from dlas_fast.datasets.options import (
    CORRUPTOR_KEYS,
    SHAPE_KEYS,
    int_option,
    warn_unknown,
    weights_option,
)
from dlas_fast.datasets.shm_pool import release
from dlas_fast.index import ChunkedTiles

OPTIONS = SHAPE_KEYS | frozenset(
    {
        "eval",
        "corrupt_before_downsize",
        "strict",
        "needs_metadata",
        "need_ref",
        "ignore_first",
        "on_error",
    }
)

# DLAS's centre and width when centers.pt is not read.
DEFAULT_CENTRE = (128, 128)
DEFAULT_WIDTH = 256

# The files of a chunk that all its tiles share: a bad one makes the whole chunk bad.
_CHUNK_FILES = ("ref.jpg", "centers.pt")

# The batch tensors, in the order the native loaders return and fill them.
_BATCH_KEYS = ("hq", "gt_fullsize_ref", "lq", "lq_fullsize_ref", "gt_center", "lq_center")


def _native_outs(shared: SharedOutputs) -> tuple:
    """The native loaders' `out` argument for `_shared_outputs`'s tensors (None for
    the ones left out of shared memory), and whether they hold zeros already."""
    arrays = (None if k in shared.zeros else shared.tensors[k].numpy() for k in _BATCH_KEYS)
    return (*arrays, shared.zeroed)


class SingleImageDataset(NativeBatches):
    """DLAS's SingleImageDataset, built from the same option dict.

    Items are dicts: ``lq (3,h,w)``, ``hq (3,H,W)``, ``gt_fullsize_ref (4,H,W)`` (ref RGB +
    mask), ``lq_fullsize_ref (4,h,w)``, ``gt_center`` and ``lq_center`` (int64, ``(2,)``),
    ``GT_path`` and ``LQ_path`` (the tile's path). Float tensors are float32 in [0, 1].
    """

    MODE = "single_image_extensible"
    OPTIONS = OPTIONS

    def __init__(self, opt: Mapping) -> None:
        self.opt = dict(opt)
        warn_unknown(self.opt, self.OPTIONS | CORRUPTOR_KEYS, self.MODE)
        if "paths" not in self.opt:
            raise ValueError(f"{self.MODE}: option 'paths' is required")
        self.eval = bool(self.opt.get("eval", False))
        self.scale = 1 if self.eval else int_option(self.opt, "scale", 1)
        self.target_size = int_option(self.opt, "target_size")
        self.multiple = int_option(self.opt, "force_multiple", 1)
        check_shape(self.target_size, self.multiple, self.scale, self.eval)
        self.need_ref = bool(self.opt.get("need_ref", False))
        self.needs_metadata = bool(self.opt.get("strict", False)) or bool(
            self.opt.get("needs_metadata", False)
        )
        self.corrupt_before_downsize = bool(self.opt.get("corrupt_before_downsize", False))
        self._init_seed()
        self.corruptor = ImageCorruptor(self.opt)  # checks every corruption name
        self._init_epoch()
        self._init_errors()
        self.ignore_first = int(self.opt.get("ignore_first", 0))
        roots = self.opt["paths"]
        count = 1 if isinstance(roots, (str, os.PathLike)) else len(roots)
        self.tiles = ChunkedTiles(
            roots,
            weights=weights_option(self.opt, "weights", count),
            ignore_first=self.ignore_first,
        )
        self._refs = RefCache()

    def __len__(self) -> int:
        return len(self.tiles)

    def get_paths(self) -> list[str]:
        """Every item's tile path, in item order."""
        return self.tiles.get_paths()

    def _corruption(self, indices: list[int]):
        native = self.corruptor.native
        if self.eval or native.changes_nothing:
            return None
        return (native, self.corrupt_before_downsize, self._epoch.value, indices, 1)

    def _reference(self, index, chunk: int, tile: int, path: str):
        if not self.need_ref:
            return None
        ref = index.ref_path(chunk)
        if ref is None:
            return None
        if not self.needs_metadata:
            return ref, DEFAULT_CENTRE, DEFAULT_WIDTH
        found = index.centre(chunk, tile)  # raises CentersFileError for a bad file
        if found is None:
            centers = os.path.join(index.chunk_dir(chunk), "centers.pt")
            if not index.has_centers(chunk):
                raise file_error(
                    DlasError,
                    centers,
                    "missing, and strict/needs_metadata is set: no tile of this chunk has "
                    "its centre (unset strict and needs_metadata to load the chunk without)",
                )
            raise file_error(
                DlasError,
                path,
                f"no entry for this tile in {centers} (strict/needs_metadata is set; it was "
                "probably overwritten, e.g. by duplicate data)",
            )
        centre, width = found
        return ref, centre, width

    def __getitem__(self, item: int) -> dict:
        return self._guarded(item, self._item)

    def _run_of(self, item: int) -> tuple[int, int, list]:
        """(first item, item count, chunk folders) of the run of items that `item`
        belongs to and that share its chunk files: its chunk."""
        index, chunk, tile = self.tiles.locate(item)
        count = index.chunk_len(chunk) - self.ignore_first
        return item - (tile - self.ignore_first), count, [index.chunk_dir(chunk)]

    def _substitute(self, item: int, err: BaseException) -> int:
        """After a bad tile, the next item; after a bad ref.jpg or centers.pt, the item
        at the same place in the next chunk (wrapped to its length): the whole bad
        chunk is stepped over, and the items of a batch that fall in it get different
        substitutes."""
        path = getattr(err, "path", None)
        if not path or os.path.basename(path) not in _CHUNK_FILES:
            return item + 1
        first, count, dirs = self._run_of(item)
        folder = os.path.normpath(os.path.dirname(path))
        if folder not in {os.path.normpath(d) for d in dirs}:
            return item + 1
        nxt = (first + count) % len(self)  # the first item of the next run
        _, length, _ = self._run_of(nxt)
        return nxt + (item - first) % length

    def _item(self, item: int) -> dict:
        index, chunk, tile = self.tiles.locate(item)
        path = index.tile_path(chunk, tile)
        reference = self._reference(index, chunk, tile, path)
        hq, hq_ref, lq, lq_ref, hq_centre, lq_centre = load_single_item(
            path,
            reference,
            self.target_size,
            self.multiple,
            self.scale,
            self.eval,
            self._refs,
            self._corruption([item]),
        )
        return {
            "lq": torch.from_numpy(lq),
            "hq": torch.from_numpy(hq),
            "gt_fullsize_ref": torch.from_numpy(hq_ref),
            "lq_fullsize_ref": torch.from_numpy(lq_ref),
            "lq_center": torch.from_numpy(lq_centre),
            "gt_center": torch.from_numpy(hq_centre),
            "LQ_path": path,
            "GT_path": path,
        }

    def _batch_specs(self, indices: list[int]) -> tuple[list, list, list]:
        """The indices, (tile, reference) of each item, and the tiles' paths."""
        items, paths = [], []
        for i in indices:
            index, chunk, tile = self.tiles.locate(i)
            path = index.tile_path(chunk, tile)
            items.append((path, self._reference(index, chunk, tile, path)))
            paths.append(path)
        return indices, items, paths

    def _load_arrays(self, specs, threads: int, shared: SharedOutputs | None):
        indices, items, _ = specs
        out = None if shared is None else _native_outs(shared)
        return self._load_batch(items, threads, self._corruption(indices), out)

    def _stack(self, specs, arrays, n: int, shared: SharedOutputs | None) -> dict:
        _, _, paths = specs
        if shared is not None:
            stacked = dict(shared.tensors)
        else:
            stacked = {k: torch.from_numpy(v) for k, v in zip(_BATCH_KEYS, arrays)}
        stacked["LQ_path"] = paths
        stacked["GT_path"] = list(paths)
        return stacked

    def _load_batch(self, specs: list, threads: int, corrupt, out=None):
        """``load_single_batch`` of (tile, reference) specs with this dataset's shape."""
        return load_single_batch(
            specs,
            self.target_size,
            self.multiple,
            self.scale,
            self.eval,
            self._refs,
            threads,
            corrupt,
            out,
        )

    def _shared_outputs(self, n: int) -> SharedOutputs | None:
        """Tensors for a batch of `n`, when `target_size` fixes the sizes, else None.
        They view one shared-memory storage (a recycled slot, or fresh zeroed memory),
        except the ref tensors when no item can have a ref (`need_ref` off): those are
        zeros whose pages are never written
        (:func:`~dlas_fast.datasets.batch.zeros_tensor`) and travel to the main process
        as their shape alone."""
        if self.target_size is None:
            return None
        side = self.target_size - self.target_size % (self.multiple * self.scale)
        lq = side // self.scale
        if lq == 0:
            return None
        f32, i64 = torch.float32, torch.int64
        shapes = [((n, 3, side, side), f32), ((n, 4, side, side), f32),
                  ((n, 3, lq, lq), f32), ((n, 4, lq, lq), f32),
                  ((n, 2), i64), ((n, 2), i64)]  # fmt: skip
        zero = {1, 3} if not self.need_ref else set()
        try:
            flat, views, zeroed, slot = self._shared_block(
                [x for i, x in enumerate(shapes) if i not in zero]
            )
        except (AttributeError, RuntimeError):
            # A torch without this (private) allocator, or no shared memory: batches
            # go the way torch's own collate sends them.
            self.collated_as_is = False
            return None
        try:
            views = iter(views)
            tensors = tuple(
                zeros_tensor(shape) if i in zero else next(views)
                for i, (shape, _) in enumerate(shapes)
            )
        except BaseException:
            release(slot)
            raise
        zeros = frozenset(_BATCH_KEYS[i] for i in zero)
        return SharedOutputs(flat, dict(zip(_BATCH_KEYS, tensors)), zeros, zeroed, slot)
