"""Drop-in Dataset classes for DLAS option dicts (docs/spec.md §4-5).

Importing this package imports torch; ``import dlas_fast`` alone does not.
"""

from dlas_fast.datasets.full_image import FullImageDataset
from dlas_fast.datasets.image_folder import ImageFolderDataset
from dlas_fast.datasets.multi_frame import MultiFrameDataset
from dlas_fast.datasets.multiscale import MultiScaleDataset, build_multiscale_patch_index_map
from dlas_fast.datasets.single_image import SingleImageDataset
from dlas_fast.datasets.stylegan2 import Stylegan2Dataset
from dlas_fast.datasets.torch_dataset import TorchDataset

__all__ = [
    "FullImageDataset",
    "ImageFolderDataset",
    "MultiFrameDataset",
    "MultiScaleDataset",
    "SingleImageDataset",
    "Stylegan2Dataset",
    "TorchDataset",
    "build_multiscale_patch_index_map",
]
