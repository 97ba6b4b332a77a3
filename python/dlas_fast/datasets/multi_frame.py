"""``multi_frame_extensible``: MultiFrameDataset over chunked video frames (docs/spec.md §5-6).

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

from collections.abc import Mapping

from dlas_fast._native import FrameSet
from dlas_fast.datasets.options import MAX_BATCH_ITEMS, int_option, weights_option
from dlas_fast.datasets.single_image import SingleImageDataset


class MultiFrameDataset(SingleImageDataset):
    """DLAS's MultiFrameDataset, built from the same option dict (``num_frames`` plus
    SingleImageDataset's options).

    Items are dicts: ``lq (F,3,h,w)``, ``hq (F,3,H,W)``, ``gt_fullsize_ref (F,4,H,W)``,
    ``lq_fullsize_ref (F,4,h,w)``, ``gt_center`` and ``lq_center`` (int64, ``(F,2)``),
    and ``GT_path`` (the last frame's tile, as DLAS).
    """

    MODE = "multi_frame_extensible"
    OPTIONS = SingleImageDataset.OPTIONS | {"num_frames"}
    ITEM_ORDER = ()  # the batch's

    def __init__(self, opt: Mapping) -> None:
        if "num_frames" not in opt:
            raise ValueError(f"{self.MODE}: option 'num_frames' is required")
        self.num_frames = int_option(opt, "num_frames", hi=MAX_BATCH_ITEMS, required=True)
        super().__init__(opt)
        self.frames = FrameSet(
            self.tiles.indexes,
            weights_option(self.opt, "weights", len(self.tiles.indexes)),
            self.ignore_first,
            self.num_frames,
        )

    def _loader_options(self) -> dict:
        return {**super()._loader_options(), "num_frames": self.num_frames}

    def __len__(self) -> int:
        return len(self.frames)

    def get_paths(self) -> list[str]:
        """Every item's ``GT_path`` (its last frame's tile), in item order."""
        return [self._tiles(i)[-1][0] for i in range(len(self))]

    def _run_of(self, item: int) -> tuple[int, int, list]:
        """(first item, item count, chunk folders) of `item`'s window of frames: its
        items share those chunks' files."""
        root, chunks, tile = self.frames.locate(item)
        index = self.tiles.indexes[root]
        count = min(index.chunk_len(c) for c in chunks) - self.ignore_first
        return item - (tile - self.ignore_first), count, [index.chunk_dir(c) for c in chunks]

    def _tiles(self, item: int) -> list:
        """(tile path, reference) of each frame of `item`."""
        root, chunks, tile = self.frames.locate(item)
        index = self.tiles.indexes[root]
        specs = []
        for chunk in chunks:
            path = index.tile_path(chunk, tile)
            specs.append((path, self._reference(index, chunk, tile, path)))
        return specs

    def _finish(self, stacked: dict, paths: list, n: int) -> dict:
        f = self.num_frames
        stacked["GT_path"] = [paths[(j + 1) * f - 1] for j in range(n)]
        return stacked
