"""Type stubs of the native module (private: import from ``dlas_fast``)."""

import os
from collections.abc import Sequence
from typing import Any, final

__all__ = [
    "CentersFileError",
    "ChunkIndex",
    "Corruptor",
    "DecodeError",
    "DestinationError",
    "DlasError",
    "FrameSet",
    "ImageFolderList",
    "ImageFolderLoader",
    "ImageSizeError",
    "LIMITS",
    "MixedSizesError",
    "MultiScaleLoader",
    "RefCache",
    "TileSet",
    "_panic_for_tests",
    "build_info",
    "check_destination",
    "check_shape",
    "cli_extract_ray_job",
    "cli_main",
    "decode_image",
    "extract",
    "frame_runs",
    "jpeg_encoder",
    "load_full_image",
    "load_single_batch",
    "load_single_item",
    "prefault",
    "read_centers",
    "render_summary",
    "write_centers",
]

class DlasError(Exception):
    path: str | None

class DecodeError(DlasError): ...
class DestinationError(DlasError): ...
class CentersFileError(DlasError): ...
class ImageSizeError(DlasError): ...

class MixedSizesError(ValueError):
    path: str | None

LIMITS: dict[str, int]

def extract(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    options_json: str,
    resume: bool = False,
    overwrite: bool = False,
    shard: tuple[int, int] | None = None,
) -> str: ...
def check_destination(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    options_json: str,
    resume: bool = False,
    overwrite: bool = False,
) -> None: ...
def cli_main(argv: list[str]) -> int: ...
def cli_extract_ray_job(argv: list[str]) -> str | int: ...
def render_summary(summary_json: str) -> str: ...
def read_centers(path: str | os.PathLike[str]) -> dict[int, tuple[tuple[int, int], int]]: ...
def write_centers(
    path: str | os.PathLike[str], entries: list[tuple[int, tuple[int, int], int]]
) -> None: ...
def jpeg_encoder() -> str: ...
def build_info() -> dict[str, str | bool]: ...

# For tests only: panics in a thread of the loaders' pool, to check that a Rust panic
# surfaces as an exception.
def _panic_for_tests() -> None: ...

@final
class ChunkIndex:
    def __new__(cls, root: str | os.PathLike[str], cache: str = "use") -> ChunkIndex: ...
    @property
    def root(self) -> str: ...
    @property
    def num_chunks(self) -> int: ...
    @property
    def num_tiles(self) -> int: ...
    @property
    def cache_path(self) -> str | None: ...
    @property
    def from_cache(self) -> bool: ...
    @property
    def resident_bytes(self) -> int: ...
    def chunk_name(self, i: int) -> str: ...
    def chunk_len(self, i: int) -> int: ...
    def chunk_dir(self, i: int) -> str: ...
    def ref_path(self, i: int) -> str | None: ...
    def tile_path(self, i: int, j: int) -> str: ...
    def centre(self, i: int, j: int) -> tuple[tuple[int, int], int] | None: ...
    def centers_error(self, i: int) -> str | None: ...
    def has_centers(self, i: int) -> bool: ...

@final
class TileSet:
    def __new__(
        cls, indexes: list[ChunkIndex], weights: list[int], ignore_first: int = 0
    ) -> TileSet: ...
    def __len__(self) -> int: ...
    @property
    def num_chunks(self) -> int: ...
    @property
    def resident_bytes(self) -> int: ...
    def locate(self, i: int) -> tuple[int, int, int]: ...
    def tile_path(self, i: int) -> str: ...
    def paths(self) -> list[str]: ...

@final
class FrameSet:
    def __new__(
        cls, indexes: list[ChunkIndex], weights: list[int], ignore_first: int, frames: int
    ) -> FrameSet: ...
    def __len__(self) -> int: ...
    @property
    def resident_bytes(self) -> int: ...
    def locate(self, i: int) -> tuple[int, list[int], int]: ...

def frame_runs(names: list[str], width: int = 12) -> list[list[int]]: ...

@final
class RefCache:
    def __new__(cls, capacity: int = 8) -> RefCache: ...

@final
class Corruptor:
    def __new__(
        cls,
        fixed: list[str],
        random: list[str],
        num_random: int,
        blur_scale: float,
        cosine_bias: bool,
        seed: int | None,
    ) -> Corruptor: ...
    @staticmethod
    def names() -> list[str]: ...
    @property
    def seed(self) -> int: ...
    @property
    def is_noop(self) -> bool: ...
    @property
    def fixed_len(self) -> int: ...
    @property
    def changes_nothing(self) -> bool: ...
    def corrupt(
        self, imgs: list[Any], epoch: int, index: int | None
    ) -> tuple[list[Any], list[float]]: ...
    @staticmethod
    def apply_named(
        name: str, strength: float, img: Any, blur_scale: float = 1.0, seed: int = 0
    ) -> Any: ...

# (Corruptor, corrupt_before_downsize, epoch, one dataset index per item, group size)
_CorruptSpec = tuple[Corruptor, bool, int, list[int], int]

def check_shape(target_size: int | None, force_multiple: int, scale: int, eval: bool) -> None:
    """Checks a dataset's shape options as every load checks them; a ValueError names
    the option."""

def load_single_item(
    tile: str,
    reference: tuple[str, tuple[int, int], int] | None,
    target_size: int | None,
    multiple: int,
    scale: int,
    eval: bool,
    cache: RefCache,
    corrupt: _CorruptSpec | None = None,
) -> tuple[Any, Any, Any, Any, Any, Any]: ...
def load_single_batch(
    items: Sequence[tuple[str, tuple[str, tuple[int, int], int] | None]],
    target_size: int | None,
    multiple: int,
    scale: int,
    eval: bool,
    cache: RefCache,
    threads: int = 1,
    corrupt: _CorruptSpec | None = None,
    out: tuple[Any, Any, Any, Any, Any, Any, bool] | None = None,
) -> tuple[Any, Any, Any, Any, Any, Any]: ...

@final
class ImageFolderList:
    def __new__(
        cls, roots: list[str], weights: list[int], cache: str = "use", sort: bool = False
    ) -> ImageFolderList: ...
    def __len__(self) -> int: ...
    def root_lens(self) -> list[int]: ...
    def caches(self) -> list[tuple[str | None, bool]]: ...
    @property
    def resident_bytes(self) -> int: ...
    def locate(self, i: int) -> tuple[int, int]: ...
    def path(self, i: int) -> str: ...
    def paths(self) -> list[str]: ...

@final
class ImageFolderLoader:
    def __new__(
        cls,
        files: ImageFolderList,
        target_size: int | None,
        multiple: int,
        scale: int,
        center_crop: int | None,
        flip: bool,
        force_square: bool,
        color_jitter: float,
        alt: str,
        skip_lq: bool,
        before_downsize: bool,
        before_factor: int,
        affine: Sequence[tuple[float, float]] | None = None,
    ) -> ImageFolderLoader: ...
    def load(
        self,
        indices: list[int],
        corruptor: Corruptor,
        epoch: int,
        threads: int = 1,
        out: tuple[Any, Any, Any, Any, Any, bool] | None = None,
    ) -> tuple[Any, Any | None, Any | None, Any | None, Any, Any | None, list[str]]: ...

@final
class MultiScaleLoader:
    def __new__(
        cls, files: ImageFolderList, tile: int, scales: int, scale: int
    ) -> MultiScaleLoader: ...
    @property
    def count(self) -> int: ...
    def load(
        self, indices: list[int], corruptor: Corruptor, epoch: int, threads: int = 1
    ) -> tuple[Any, Any, list[str]]: ...

# (train, min_tile_size, target_size, scale, fixed_size, tile_scale_normal_stddev, use_flip,
# use_rot, use_blurring, blur_magnitude, force_multiple, lq_noise)
_FullImageSpec = tuple[bool, int, int, int, bool, float, bool, bool, bool, int, int, float | None]

def decode_image(path: str) -> Any: ...
def load_full_image(
    path: str,
    lq_path: str | None,
    spec: _FullImageSpec,
    corruptor: Corruptor,
    epoch: int,
    index: int,
) -> list[Any]: ...
def prefault(addr: int, len: int) -> bool: ...
