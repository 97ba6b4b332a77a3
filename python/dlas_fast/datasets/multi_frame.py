"""``multi_frame_extensible``: MultiFrameDataset over chunked video frames (SPEC §5-6).

Chunk folders are frames: a folder name's last 12 characters are its frame counter and
the rest names the source video. An item is ``num_frames`` consecutive frames of one
source, the tile at the same offset in each. The frames are grouped natively
(:class:`dlas_fast._native.FrameSet`): items never mix two videos and never index out of
range, and a source shorter than ``num_frames`` yields none. (DLAS walks backwards
across folder boundaries and can do both.)

An item's frames are loaded in one native call, like a SingleImageDataset batch, and
corrupted together: one draw of the random corruptions for all frames, a strength per
frame, as DLAS corrupts a list of frames.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import torch

from dlas_fast._native import FrameSet, MixedSizesError
from dlas_fast.datasets.base import BAD_INPUT
from dlas_fast.datasets.batch import Batch
from dlas_fast.datasets.options import MAX_BATCH_ITEMS, int_option, weights_option
from dlas_fast.datasets.shm_pool import release
from dlas_fast.datasets.single_image import _BATCH_KEYS, SingleImageDataset, _native_outs


class MultiFrameDataset(SingleImageDataset):
    """DLAS's MultiFrameDataset, built from the same option dict (``num_frames`` plus
    SingleImageDataset's options).

    Items are dicts: ``lq (F,3,h,w)``, ``hq (F,3,H,W)``, ``gt_fullsize_ref (F,4,H,W)``,
    ``lq_fullsize_ref (F,4,h,w)``, ``gt_center`` and ``lq_center`` (int64, ``(F,2)``),
    and ``GT_path`` (the last frame's tile, as DLAS).
    """

    MODE = "multi_frame_extensible"
    OPTIONS = SingleImageDataset.OPTIONS | {"num_frames"}

    def __init__(self, opt: Mapping) -> None:
        super().__init__(opt)
        if "num_frames" not in self.opt:
            raise ValueError(f"{self.MODE}: option 'num_frames' is required")
        frames = int_option(self.opt, "num_frames", hi=MAX_BATCH_ITEMS, required=True)
        self.num_frames = frames
        self.frames = FrameSet(
            self.tiles.indexes,
            weights_option(self.opt, "weights", len(self.tiles.indexes)),
            self.ignore_first,
            frames,
        )

    def __len__(self) -> int:
        return len(self.frames)

    def get_paths(self) -> list[str]:
        """Every item's ``GT_path`` (its last frame's tile), in item order."""
        return [self._frames(i)[-1][0] for i in range(len(self))]

    def _run_of(self, item: int) -> tuple[int, int, list]:
        """(first item, item count, chunk folders) of `item`'s window of frames: its
        items share those chunks' files."""
        root, chunks, tile = self.frames.locate(item)
        index = self.tiles.indexes[root]
        count = min(index.chunk_len(c) for c in chunks) - self.ignore_first
        return item - (tile - self.ignore_first), count, [index.chunk_dir(c) for c in chunks]

    def _frames(self, item: int) -> list:
        """(tile path, reference) of each frame of `item`."""
        root, chunks, tile = self.frames.locate(item)
        index = self.tiles.indexes[root]
        specs = []
        for chunk in chunks:
            path = index.tile_path(chunk, tile)
            specs.append((path, self._reference(index, chunk, tile, path)))
        return specs

    def _load(self, indices: list[int], threads: int, out=None):
        specs = [spec for i in indices for spec in self._frames(i)]
        corrupt = self._corruption([i for i in indices for _ in range(self.num_frames)])
        if corrupt is not None:
            corrupt = (*corrupt[:4], self.num_frames)
        return specs, self._load_batch(specs, threads, corrupt, out)

    def __getitem__(self, item: int) -> dict:
        return self._guarded(item, self._item)

    def _item(self, item: int) -> dict:
        specs, arrays = self._load([item], 1)
        out = {k: torch.from_numpy(v) for k, v in zip(_BATCH_KEYS, arrays)}
        out["GT_path"] = specs[-1][0]
        return out

    def __getitems__(self, indices: list[int]) -> list[dict]:
        """A whole batch of items (all their frames) in one native call; see
        :meth:`SingleImageDataset.__getitems__`."""
        n, f = len(indices), self.num_frames
        in_worker = torch.utils.data.get_worker_info() is not None
        threads = 1 if in_worker else (os.cpu_count() or 1)
        shared = self._shared_outputs(n * f) if in_worker and self.collated_as_is else None
        out = None if shared is None else _native_outs(shared)
        slot = None if shared is None else shared[4]
        try:
            specs, arrays = self._load(list(indices), threads, out)
        except MixedSizesError:
            release(slot)
            return [self[i] for i in indices]  # tiles of different sizes: item by item
        except BAD_INPUT:
            release(slot)
            if self.on_error == "raise":
                raise
            return [self[i] for i in indices]  # a bad sample: item by item, substituted
        except BaseException:
            release(slot)
            raise
        tensors = shared[1] if shared is not None else [torch.from_numpy(a) for a in arrays]
        stacked = {k: t.view(n, f, *t.shape[1:]) for k, t in zip(_BATCH_KEYS, tensors)}
        stacked["GT_path"] = [specs[(j + 1) * f - 1][0] for j in range(n)]
        if shared is None:
            return Batch.of(stacked, n, None, self)
        return Batch.of(stacked, n, shared[0], self, zeros=shared[2], slot=slot)
