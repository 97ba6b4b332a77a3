"""Drop-in Dataset classes for DLAS option dicts (SPEC §4-5).

Importing this package imports torch; ``import dlas_fast`` alone does not.
"""

from dlas_fast.datasets.image_folder import ImageFolderDataset
from dlas_fast.datasets.multi_frame import MultiFrameDataset
from dlas_fast.datasets.multiscale import MultiScaleDataset, build_multiscale_patch_index_map
from dlas_fast.datasets.single_image import SingleImageDataset

__all__ = [
    "ImageFolderDataset",
    "MultiFrameDataset",
    "MultiScaleDataset",
    "SingleImageDataset",
    "build_multiscale_patch_index_map",
]
