"""dlas_fast: fast, drop-in dataset tools for DL-Art-School.

Public API:

* :func:`extract` - turn a folder of photos into a chunked patch dataset.
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
* :class:`ImageCorruptor` - DLAS's image corruptor, seeded and reproducible (imports
  numpy when first used).
* The exceptions :class:`DlasError` (base), :class:`DecodeError`,
  :class:`DestinationError`, :class:`CentersFileError`.

Importing this package does not import torch (the extraction command's start-up time
counts).
"""

from importlib.metadata import PackageNotFoundError, version

from dlas_fast._native import (
    CentersFileError,
    DecodeError,
    DestinationError,
    DlasError,
    jpeg_encoder,
    read_centers,
    write_centers,
)
from dlas_fast.extract import ExtractSummary, SourceIssue, extract
from dlas_fast.index import ChunkedTiles, ChunkIndex, TileSet
from dlas_fast.registry import (
    create_dataloader,
    create_dataset,
    get_dataset_debugger,
    register_dataset,
)


def __getattr__(name: str):
    if name in ("ImageCorruptor", "CORRUPTION_NAMES"):
        from dlas_fast import corruptor

        return getattr(corruptor, name)
    if name in ("build_multiscale_patch_index_map", "MultiscaleTreeNode"):
        from dlas_fast import patch_tree

        return getattr(patch_tree, name)
    if name == "DistIterSampler":
        from dlas_fast.samplers import DistIterSampler

        return DistIterSampler
    if name in ("dataset_options", "load_config"):
        from dlas_fast import config

        return getattr(config, name)
    raise AttributeError(f"module 'dlas_fast' has no attribute {name!r}")


try:
    __version__ = version("dlas_fast")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

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
    "SourceIssue",
    "TileSet",
    "__version__",
    "create_dataloader",
    "create_dataset",
    "dataset_options",
    "load_config",
    "get_dataset_debugger",
    "extract",
    "jpeg_encoder",
    "build_multiscale_patch_index_map",
    "read_centers",
    "register_dataset",
    "write_centers",
]
