"""dlas_fast: fast, drop-in dataset tools for DL-Art-School.

Public API:

* :func:`extract` - turn a folder of photos into a chunked patch dataset.
* :func:`pack` - a chunked dataset as a few large tar shards with sidecar indexes.
* :func:`read_centers` / :func:`write_centers` - ``centers.pt`` files, read without
  running pickle code.
* :class:`ChunkedTiles`, :class:`ChunkIndex`, :class:`TileSet` - the chunk index of
  chunked datasets, cached and held in native memory.
* :func:`create_dataset` / :func:`create_dataloader` / :func:`register_dataset` - DLAS's
  dataset registry (the Dataset classes import torch when first used).
* :func:`dataset_options` / :func:`load_config` - a dataset section of a DLAS training
  YAML, as DLAS's trainer hands it to ``create_dataset`` (:mod:`dlas_fast.config`).
* :func:`build_multiscale_patch_index_map` - MultiScaleDataset's patch tree.
* :class:`DistIterSampler` - the sampler of DLAS's distributed loop, which also hands
  its epoch to the dataset (imports torch when first used).
* :class:`ResumableSampler` - a shuffle keyed on the dataset's seed and the epoch, split
  between ranks, that can start an epoch part-way (a resumed run; imports torch).
* :class:`ImageCorruptor` - DLAS's image corruptor, seeded and reproducible (imports
  numpy when first used).
* :func:`build_info` - what this build is: version, JPEG codec (libjpeg-turbo) and
  the SIMD level it runs at, our own AVX2 paths, optimisation (``dlas-fast --version``
  prints the same).
* The exceptions :class:`DlasError` (base), :class:`DecodeError`,
  :class:`DestinationError`, :class:`CentersFileError`, :class:`ImageSizeError`, and
  :class:`MixedSizesError` (a ValueError). An error about a file names it in its
  ``path`` attribute (None otherwise); they pickle with their message and ``path``,
  so a DataLoader worker's error reaches the main process.

Importing this package does not import torch (the extraction command's start-up time
counts).
"""

from __future__ import annotations

import importlib

from dlas_fast._native import (
    CentersFileError,
    DecodeError,
    DestinationError,
    DlasError,
    ImageSizeError,
    MixedSizesError,
    build_info,
    jpeg_encoder,
    read_centers,
    write_centers,
)

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)

# Everything else is imported on first use (PEP 562): `dlas-fast extract` starts with
# this package's import, and its start-up time counts (importlib.metadata alone takes
# about 35 ms).
_LAZY = {
    "extract": "dlas_fast._extract",
    "pack": "dlas_fast._pack",
    "PackSummary": "dlas_fast._pack",
    "ExtractSummary": "dlas_fast._extract",
    "SourceIssue": "dlas_fast._extract",
    "ChunkedTiles": "dlas_fast.index",
    "ChunkIndex": "dlas_fast.index",
    "TileSet": "dlas_fast.index",
    "create_dataloader": "dlas_fast.registry",
    "create_dataset": "dlas_fast.registry",
    "get_dataset_debugger": "dlas_fast.registry",
    "register_dataset": "dlas_fast.registry",
    "ImageCorruptor": "dlas_fast.corruptor",
    "CORRUPTION_NAMES": "dlas_fast.corruptor",
    "build_multiscale_patch_index_map": "dlas_fast.patch_tree",
    "MultiscaleTreeNode": "dlas_fast.patch_tree",
    "DistIterSampler": "dlas_fast.samplers",
    "ResumableSampler": "dlas_fast.samplers",
    "dataset_options": "dlas_fast.config",
    "load_config": "dlas_fast.config",
}

if TYPE_CHECKING:  # what the lazy names are, for type checkers and IDEs
    from dlas_fast._extract import ExtractSummary, SourceIssue, extract
    from dlas_fast._pack import PackSummary, pack
    from dlas_fast.config import dataset_options, load_config
    from dlas_fast.corruptor import CORRUPTION_NAMES, ImageCorruptor
    from dlas_fast.index import ChunkedTiles, ChunkIndex, TileSet
    from dlas_fast.patch_tree import MultiscaleTreeNode, build_multiscale_patch_index_map
    from dlas_fast.registry import (
        create_dataloader,
        create_dataset,
        get_dataset_debugger,
        register_dataset,
    )
    from dlas_fast.samplers import DistIterSampler, ResumableSampler


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value  # once
        return value
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            value = version("dlas_fast")
        except PackageNotFoundError:  # pragma: no cover - running from a source tree
            value = "0.0.0"
        globals()["__version__"] = value
        return value
    raise AttributeError(f"module 'dlas_fast' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY) | {"__version__"})


__all__ = [
    "CORRUPTION_NAMES",
    "CentersFileError",
    "ChunkIndex",
    "ChunkedTiles",
    "DecodeError",
    "DestinationError",
    "DistIterSampler",
    "DlasError",
    "ExtractSummary",
    "ImageCorruptor",
    "ImageSizeError",
    "MixedSizesError",
    "MultiscaleTreeNode",
    "PackSummary",
    "ResumableSampler",
    "SourceIssue",
    "TileSet",
    "__version__",
    "create_dataloader",
    "create_dataset",
    "dataset_options",
    "load_config",
    "get_dataset_debugger",
    "extract",
    "pack",
    "build_info",
    "jpeg_encoder",
    "build_multiscale_patch_index_map",
    "read_centers",
    "register_dataset",
    "write_centers",
]
