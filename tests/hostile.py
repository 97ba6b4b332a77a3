"""Hostile inputs for the fault tests, made on the fly (no binary files in the tree):
special files, bombs, oversized names, damaged chunks. Each maker writes into a folder
the test gives it and returns what it made."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

# ---- Extraction: destinations, names, source lists ------------------------------------


def _photo(path, w: int = 640, h: int = 560, seed: int = 0):
    """A small source photo (big enough for the default crops) at `path`."""
    from conftest import gradient, save

    return save(gradient(w, h, seed=seed), path)


def foreign_folder_at_chunk_name(src, dst, name: str = "important") -> dict:
    """A source `SRC/<name>.jpg` and, in DST, a user's folder `DST/<name>/thesis.tex`
    that is in the way of its chunk. Returns {"source", "folder", "file", "text"}."""
    from pathlib import Path

    src, dst = Path(src), Path(dst)
    source = _photo(src / f"{name}.jpg")
    folder = dst / name
    folder.mkdir(parents=True, exist_ok=True)
    text = "\\documentclass{article} % years of work\n"
    (folder / "thesis.tex").write_text(text)
    return {"source": source, "folder": folder, "file": folder / "thesis.tex", "text": text}


def entries_in_the_way(dst, outside) -> dict:
    """Things a user may have at chunk names in DST, none written by dlas-fast: a
    folder holding a file, a folder holding a folder, a folder holding only a
    `ref.jpg` of the user's, a plain file, and a symbolic link to a folder `outside`
    (which holds `keep.txt`). Returns {chunk name: path}."""
    from pathlib import Path

    dst, outside = Path(dst), Path(outside)
    outside.mkdir(parents=True, exist_ok=True)
    (outside / "keep.txt").write_text("outside DST")
    made = {}
    made["notes"] = dst / "notes"
    (dst / "notes").mkdir(parents=True)
    (dst / "notes" / "todo.txt").write_text("mine")
    made["album"] = dst / "album"
    (dst / "album" / "2019").mkdir(parents=True)
    (dst / "album" / "2019" / "00000001.jpg").write_bytes(b"a user's photo")
    made["portrait"] = dst / "portrait"
    (dst / "portrait").mkdir()
    (dst / "portrait" / "ref.jpg").write_bytes(b"a user's ref.jpg")
    made["letter"] = dst / "letter"
    (dst / "letter").write_text("not a folder")
    made["linked"] = dst / "linked"
    (dst / "linked").symlink_to(outside, target_is_directory=True)
    return made


def planted_temporaries(dst, outside) -> dict:
    """Entries named like the extractor's temporary files that it did not make: a
    symbolic link to `outside` (a folder holding `keep.txt`) and a real folder holding
    a user's file, both named like temporary chunk folders, and links named like the
    temporary files of the manifest and the report, to `outside/victim.txt`. Returns
    {"link", "folder", "file_links", "outside"}."""
    from pathlib import Path

    dst, outside = Path(dst), Path(outside)
    outside.mkdir(parents=True, exist_ok=True)
    (outside / "keep.txt").write_text("outside DST")
    (outside / "00000001.jpg").write_bytes(b"looks like a tile")
    (outside / "victim.txt").write_text("must not be written through a link")
    link = dst / ".dlas_fast-tmp-1of1-planted-link"
    link.symlink_to(outside, target_is_directory=True)
    folder = dst / ".dlas_fast-tmp-1of1-planted"
    folder.mkdir()
    (folder / "thesis.tex").write_text("not a tile")
    file_links = [dst / ".dlas_fast-job-1of1.partial", dst / ".dlas_fast-report-1of1.partial"]
    for f in file_links:
        f.symlink_to(outside / "victim.txt")
    return {"link": link, "folder": folder, "file_links": file_links, "outside": outside}


def long_named_sources(src) -> dict:
    """Sources whose names push the file system's limit of 255 bytes a name: a
    255-byte name (a 251-byte stem), two 250-byte stems in two folders (the second
    chunk is `<stem>_2`, 252 bytes), and a name of 120 bytes that are not UTF-8 (its
    chunk name, with each byte replaced by U+FFFD, is 360 bytes: no file system takes
    it). Returns {"longest", "twin_a", "twin_b", "not_utf8"} -> path."""
    import os
    from pathlib import Path

    src = Path(src)
    made = {
        "longest": _photo(src / ("L" * 251 + ".jpg"), seed=1),
        "twin_a": _photo(src / "a" / ("T" * 250 + ".png"), seed=2),
        "twin_b": _photo(src / "b" / ("T" * 250 + ".png"), seed=3),
    }
    raw = os.fsencode(src) + b"/" + b"\xff" * 120 + b".jpg"
    _photo(Path(os.fsdecode(raw)), seed=4)
    made["not_utf8"] = Path(os.fsdecode(raw))
    return made


def grow_source_list(src, rel: str = "a/x.jpg"):
    """Adds a source that sorts before the existing ones (`a/x.jpg` before `b/x.jpg`):
    every later name shifts. Returns its path."""
    from pathlib import Path

    return _photo(Path(src) / rel, seed=7)


def snapshot(root) -> dict:
    """Everything under `root` (dotfiles, folders and links included): relative path
    -> bytes for files, ("dir",) for folders, ("link", target) for links."""
    import os
    from pathlib import Path

    root = Path(root)
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            rel = str(p.relative_to(root))
            if p.is_symlink():
                out[rel] = ("link", os.readlink(p))
            elif p.is_dir():
                out[rel] = ("dir",)
            else:
                out[rel] = p.read_bytes()
    return out


# ---- Decoding: special files, decompression bombs, oversized options ------------------


def special_files(folder, fifo: str = "x.jpg", zero: str = "y.jpg") -> list:
    """In `folder`: a FIFO named `fifo` that nothing ever writes to (opening it to read
    waits for a writer forever) and a symbolic link named `zero` to /dev/zero (reading
    it never ends). Returns their paths."""
    import os
    from pathlib import Path

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    os.mkfifo(folder / fifo)
    os.symlink("/dev/zero", folder / zero)
    return [folder / fifo, folder / zero]


def zlib_zeros(n: int, piece: int = 1 << 24):
    """A zlib stream of `n` zero bytes, yielded in parts, made in a fraction of a second
    and little memory: a full flush after each `piece` of zeros resets the compressor,
    so every middle piece compresses to the same bytes, made once. The checksum of `n`
    zeros is written directly (Adler-32: a = 1, b = n mod 65521)."""
    import struct
    import zlib

    piece = max(1, min(piece, n))
    whole, rest = divmod(n, piece)
    c = zlib.compressobj(9, zlib.DEFLATED, 15, 9, zlib.Z_RLE)
    zero = bytes(piece)
    yield c.compress(zero) + c.flush(zlib.Z_FULL_FLUSH)
    if whole > 1:
        middle = c.compress(zero) + c.flush(zlib.Z_FULL_FLUSH)
        for _ in range(whole - 1):
            yield middle
    tail = c.compress(bytes(rest)) + c.flush(zlib.Z_FINISH)
    yield tail[:-4] + struct.pack(">I", ((n % 65521) << 16) | 1)


def png_chunk(kind: bytes, parts) -> bytes:
    """A PNG chunk of type `kind` whose data is the concatenation of `parts`."""
    import struct
    import zlib

    data = b"".join(parts)
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bomb(path, chunk: bytes = b"iCCP", inflated: int = 2 << 30, size=(64, 48)):
    """A valid `size` (w, h) RGB PNG at `path` carrying a `chunk` (iCCP, zTXt or iTXt)
    whose compressed payload inflates to `inflated` zero bytes: 2 GiB by default, from a
    file of about 2 MB. Returns the path."""
    import struct
    import zlib
    from pathlib import Path

    w, h = size
    head = {b"iCCP": b"bomb\0\0", b"zTXt": b"Comment\0\0", b"iTXt": b"Comment\0\1\0\0\0"}
    meta = png_chunk(chunk, [head[chunk], *zlib_zeros(inflated)])
    rows = b"".join(b"\0" + bytes((x * 5 + y * 3) % 256 for x in range(w * 3)) for y in range(h))
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", [ihdr])
        + meta
        + png_chunk(b"IDAT", [zlib.compress(rows)])
        + png_chunk(b"IEND", [])
    )
    return path


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
