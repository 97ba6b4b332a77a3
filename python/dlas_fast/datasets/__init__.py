"""Drop-in Dataset classes for DLAS option dicts (docs/spec.md §4-5).

Importing this package imports torch (an ImportError naming the install command when
it is missing); ``import dlas_fast`` alone does not.
"""

from dlas_fast._torch import require

require()

from dlas_fast.datasets.full_image import FullImageDataset  # noqa: E402
from dlas_fast.datasets.image_folder import ImageFolderDataset  # noqa: E402
from dlas_fast.datasets.multi_frame import MultiFrameDataset  # noqa: E402
from dlas_fast.datasets.multiscale import MultiScaleDataset, build_multiscale_patch_index_map  # noqa: E402
from dlas_fast.datasets.single_image import SingleImageDataset  # noqa: E402
from dlas_fast.datasets.stylegan2 import Stylegan2Dataset  # noqa: E402
from dlas_fast.datasets.torch_dataset import TorchDataset  # noqa: E402

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
