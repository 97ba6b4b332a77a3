"""Hostile inputs for the fault tests, made on the fly (no binary files in the tree):
special files, bombs, oversized names, damaged chunks. Each maker writes into a folder
the test gives it and returns what it made."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

# ---- Extraction: destinations, names, source lists ------------------------------------


# ---- Decoding: special files, decompression bombs, oversized options ------------------


# ---- Loading: damaged chunks, images no crop fits ------------------------------------

#: What :func:`damage_chunk_file` can do to a chunk: its ref.jpg or centers.pt made
#: undecodable, or its centers.pt removed.
CHUNK_DAMAGE = ("ref_damaged", "centers_damaged", "centers_missing")


def noise_image(width: int, height: int, seed: int = 0):
    """A Pillow RGB image of noise, `width` x `height`."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


def chunked_dataset(
    folder: Path, names: Sequence[str], side: int = 320, tile: int = 32
) -> dict[str, int]:
    """A chunked dataset in `folder`/ds, extracted by dlas_fast from one noise source of
    `side` x `side` per name: a chunk per name of `(side // tile)^2` tiles (100 by
    default: more than the 64 substitutes ``on_error: skip`` tries for a bad tile),
    each with ref.jpg and centers.pt. Returns {chunk name: tile count}."""
    import dlas_fast

    src = folder / "src"
    src.mkdir(parents=True)
    for i, name in enumerate(names):
        noise_image(side, side, seed=i).save(src / f"{name}.png")
    dst = folder / "ds"
    dlas_fast.extract(src, dst, crop_sz=[tile], step=[tile], resize_final_img=[1], min_size=0)
    return {name: sum(1 for p in (dst / name).glob("*.jpg") if p.name != "ref.jpg")
            for name in names}  # fmt: skip


def damage_chunk_file(chunk: Path, damage: str) -> Path:
    """Damages a file every tile of `chunk` shares (one of :data:`CHUNK_DAMAGE`) and
    returns that file's path."""
    if damage == "ref_damaged":
        target = chunk / "ref.jpg"
        target.write_bytes(b"\xff\xd8\xff\xe0 not a JPEG past its first marker")
    elif damage == "centers_damaged":
        target = chunk / "centers.pt"
        target.write_bytes(b"PK\x03\x04 not a zip archive")
    elif damage == "centers_missing":
        target = chunk / "centers.pt"
        target.unlink()
    else:
        raise ValueError(f"unknown damage {damage!r}; one of {CHUNK_DAMAGE}")
    return target


#: Images whose size leaves no tile at the usual options: one pixel, and a strip
#: 20000 pixels long each way (its square is 16 x 16).
ODD_SIZES = {"one_pixel": (1, 1), "wide_strip": (20000, 16), "tall_strip": (16, 20000)}


def odd_size_images(folder: Path, good: int = 3, side: int = 64) -> dict[str, Path]:
    """Writes `good` noise PNGs of `side` x `side` (``good_<i>.png``) and one PNG of each
    of :data:`ODD_SIZES` into `folder`; returns {stem: path} of the odd ones."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(good):
        noise_image(side, side, seed=100 + i).save(folder / f"good_{i}.png")
    odd = {}
    for i, (stem, (w, h)) in enumerate(ODD_SIZES.items()):
        odd[stem] = folder / f"{stem}.png"
        noise_image(w, h, seed=200 + i).save(odd[stem])
    return odd


def corrupt_file(path: Path) -> Path:
    """Replaces `path` with bytes that start like a PNG and then stop."""
    path.write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    return path
