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

from dlas_fast._native import DlasError, Loader
from dlas_fast.corruptor import ImageCorruptor
from dlas_fast.datasets.base import NativeBatches, file_error, log
from dlas_fast.datasets.options import (
    CORRUPTOR_KEYS,
    DEGRADATION_KEYS,
    SHAPE_KEYS,
    check_degradation,
    int_option,
    wants_usm,
    warn_unknown,
    weights_option,
)
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


#: Image file endings that suggest a folder of raw images (DLAS's, any case).
_IMAGE_ENDINGS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".webp")


def _some_image(root: str, budget: int = 2000) -> str | None:
    """An image file in `root` or its sub-folders, looking at `budget` entries at most
    (links not followed), or None."""
    pending = [root]
    while pending and budget > 0:
        try:
            entries = os.scandir(pending.pop())
        except OSError:
            continue
        with entries:
            for entry in entries:
                budget -= 1
                if budget <= 0:
                    break
                if entry.is_dir(follow_symlinks=False):
                    pending.append(entry.path)
                elif entry.name.lower().endswith(_IMAGE_ENDINGS) and entry.name != "ref.jpg":
                    return entry.path
    return None


def _no_tiles_message(mode: str, indexes) -> str:
    """Why a chunked dataset has no item, and what to do: its roots hold no chunk
    folder of tiles; when one holds images, how to use them."""
    empty = [i for i in indexes if i.num_tiles == 0]
    root = (empty or indexes)[0].root
    message = (
        f"{mode}: no tiles in {root} (a chunked dataset is folders of tiles, each with its "
        f"ref.jpg and centers.pt, as `dlas-fast extract` writes them)"
    )
    image = _some_image(root)
    if image is not None:
        message += (
            f"; it holds images (e.g. {image}): extract them first with "
            f"`dlas-fast extract {root} DST` and point `paths` at DST, or read them as they "
            f"are with `mode: imagefolder`"
        )
    elif indexes and not empty:
        message += "; every chunk was emptied by ignore_first or a weight of 0"
    return message


class SingleImageDataset(NativeBatches):
    """DLAS's SingleImageDataset, built from the same option dict.

    Items are dicts: ``lq (3,h,w)``, ``hq (3,H,W)``, ``gt_fullsize_ref (4,H,W)`` (ref RGB +
    mask), ``lq_fullsize_ref (4,h,w)``, ``gt_center`` and ``lq_center`` (int64, ``(2,)``),
    ``GT_path`` and ``LQ_path`` (the tile's path). Float tensors are float32 in [0, 1].
    """

    MODE = "single_image_extensible"
    OPTIONS = OPTIONS
    ITEM_ORDER = ("lq", "hq", "gt_fullsize_ref", "lq_fullsize_ref", "lq_center", "gt_center",
                  "LQ_path", "GT_path")  # fmt: skip

    def __init__(self, opt: Mapping) -> None:
        self.opt = dict(opt)
        warn_unknown(self.opt, self.OPTIONS | CORRUPTOR_KEYS | DEGRADATION_KEYS, self.MODE)
        if "paths" not in self.opt:
            raise ValueError(f"{self.MODE}: option 'paths' is required")
        self.eval = bool(self.opt.get("eval", False))
        self.scale = 1 if self.eval else int_option(self.opt, "scale", 1)
        self.target_size = int_option(self.opt, "target_size")
        self.multiple = int_option(self.opt, "force_multiple", 1)
        self.need_ref = bool(self.opt.get("need_ref", False))
        self.needs_metadata = bool(self.opt.get("strict", False)) or bool(
            self.opt.get("needs_metadata", False)
        )
        if self.needs_metadata and not self.need_ref:
            log.warning(
                "%s: strict / needs_metadata make a missing tile centre an error, and "
                "centres are only read with the refs: without need_ref: true they have no "
                "effect",
                self.MODE,
            )
        self.corrupt_before_downsize = bool(self.opt.get("corrupt_before_downsize", False))
        # The options are checked here, before anything is listed.
        self._loader = Loader("single", self._loader_options())
        self._init_seed()
        check_degradation(self.opt, self.MODE)
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
        if len(self.tiles) == 0:
            raise ValueError(_no_tiles_message(self.MODE, self.tiles.indexes))

    def _loader_options(self) -> dict:
        """The native loader's options (checked there, errors naming the option)."""
        return {
            "target_size": self.target_size,
            "force_multiple": self.multiple,
            "scale": self.scale,
            "eval": self.eval,
            "corrupt_before_downsize": self.corrupt_before_downsize,
            "need_ref": self.need_ref,
            "gt_usm": wants_usm(self.opt),
        }

    def __len__(self) -> int:
        return len(self.tiles)

    def get_paths(self) -> list[str]:
        """Every item's tile path, in item order."""
        return self.tiles.get_paths()

    def _corrupts(self) -> bool:
        return not self.eval and not self.corruptor.native.changes_nothing

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

    def _tiles(self, item: int) -> list:
        """(tile path, reference) of each tile of `item`: the item's own."""
        index, chunk, tile = self.tiles.locate(item)
        path = index.tile_path(chunk, tile)
        return [(path, self._reference(index, chunk, tile, path))]

    def _batch_specs(self, indices: list[int]) -> dict:
        """The loader's item columns: indices, tiles, and their refs when read."""
        tiles, refs, centres, widths = [], [], [], []
        for i in indices:
            for path, reference in self._tiles(i):
                tiles.append(path)
                ref, centre, width = reference or (None, (0, 0), 0)
                refs.append(ref)
                centres.append(centre)
                widths.append(width)
        items = {"index": indices, "tile": tiles}
        if self.need_ref:
            items.update(ref=refs, centre=centres, width=widths)
        return items

    def _finish(self, stacked: dict, paths: list, n: int) -> dict:
        stacked["LQ_path"] = paths
        stacked["GT_path"] = list(paths)
        return stacked
