"""Hostile inputs for the fault tests, made on the fly (no binary files in the tree):
special files, bombs, oversized names, damaged chunks. Each maker writes into a folder
the test gives it and returns what it made."""

from __future__ import annotations

# ---- Extraction: destinations, names, source lists ------------------------------------


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
