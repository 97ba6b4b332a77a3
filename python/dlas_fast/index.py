"""The chunk index of chunked datasets (docs/spec.md §3), as the loaders see it.

:class:`ChunkIndex` (one dataset root) and :class:`TileSet` (the items over several
roots) live in native memory: a forked DataLoader worker shares them instead of copying
millions of Python objects page by page. :class:`ChunkedTiles` puts them together the
way DLAS's chunked datasets read their ``paths``, ``weights`` and ``ignore_first``
options.

The cache is ``<root>/.dlas_fast-index.bin`` (or, when the root cannot be written,
a file under ``$DLAS_FAST_CACHE``, ``$XDG_CACHE_HOME/dlas_fast`` or
``~/.cache/dlas_fast``, in ``index/``). It holds facts about files only, with paths
relative to the root, and a fingerprint (the chunk folder names, each folder's mtime,
each centers.pt's mtime and size) that is checked on every open. DLAS's ``cache.pth``
is never read or touched.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Union

from dlas_fast._native import LIMITS, ChunkIndex, TileSet

__all__ = ["ChunkIndex", "ChunkedTiles", "TileSet"]

PathLike = Union[str, "os.PathLike[str]"]


class ChunkedTiles:
    """Every tile of one or more chunked-dataset roots, in DLAS's item order.

    Args:
        paths: a root, or a list of roots (DLAS's ``paths``).
        weights: how many times each root's chunks are repeated (DLAS's ``weights``);
            default 1 for every root. (DLAS requires it when ``paths`` is a list.)
        ignore_first: drop the first N tiles of every chunk; chunks left empty are
            dropped (DLAS's ``ignore_first``).
        cache: ``"use"`` (reuse a fresh cache, else build and save one), ``"rebuild"``
            or ``"off"``.
    """

    def __init__(
        self,
        paths: PathLike | Sequence[PathLike],
        weights: Sequence[int] | None = None,
        ignore_first: int = 0,
        cache: str = "use",
    ) -> None:
        if isinstance(paths, (str, os.PathLike)):
            paths = [paths]
        self.paths = [os.fspath(p) for p in paths]
        if not self.paths:
            raise ValueError("paths: give at least one dataset folder")
        if weights is None:
            weights = [1] * len(self.paths)
        if len(weights) != len(self.paths):
            raise ValueError(
                f"weights: {len(weights)} weights for {len(self.paths)} paths; give one per path"
            )
        most = LIMITS["max_weight"]
        if any(isinstance(w, bool) or int(w) != w or not 0 <= w <= most for w in weights):
            raise ValueError(
                f"weights: each weight must be an integer from 0 to {most}, got {list(weights)}"
            )
        if int(ignore_first) != ignore_first or ignore_first < 0:
            raise ValueError(f"ignore_first: must be a non-negative integer, got {ignore_first!r}")
        self.indexes = [ChunkIndex(p, cache) for p in self.paths]
        self.tiles = TileSet(self.indexes, [int(w) for w in weights], int(ignore_first))

    def __len__(self) -> int:
        return len(self.tiles)

    def locate(self, item: int) -> tuple[ChunkIndex, int, int]:
        """The index, chunk number and tile number of ``item``."""
        root, chunk, tile = self.tiles.locate(item)
        return self.indexes[root], chunk, tile

    def tile_path(self, item: int) -> str:
        """``os.path.join(path, chunk, tile)`` of ``item``."""
        return self.tiles.tile_path(item)

    def get_paths(self) -> list[str]:
        """Every item's tile path, in item order (DLAS's ``get_paths()``)."""
        return self.tiles.paths()

    @property
    def resident_bytes(self) -> int:
        """Heap bytes of the indexes and the item view."""
        return sum(i.resident_bytes for i in self.indexes) + self.tiles.resident_bytes
