"""The bad-input corpus, made here: extraction finishes with every bad
file reported and the good ones extracted, and loading it as an image folder with
``on_error='skip'`` visits every item without a crash, listing the bad files."""

from __future__ import annotations

import io
import os
import struct
import warnings
import zlib
from pathlib import Path

import dlas_fast
import numpy as np
import pytest
from conftest import gradient, jpeg_bytes
from PIL import Image


def png_with_header(width: int, height: int) -> bytes:
    """A PNG whose header declares width x height (and no image data)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


def exif_rotated_jpeg(img: np.ndarray) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "JPEG", quality=92, exif=exif.tobytes())
    return buf.getvalue()


@pytest.fixture()
def corpus(tmp_path: Path) -> tuple[Path, set[str], set[str]]:
    """(folder, names that must fail, names that must load)."""
    src = tmp_path / "corpus"
    src.mkdir()
    big = gradient(700, 560, seed=1)
    bad, good = set(), set()

    def put(name: str, data: bytes, ok: bool) -> None:
        (src / name).write_bytes(data)
        (good if ok else bad).add(name)

    put("zero.jpg", b"", False)
    whole = jpeg_bytes(big, quality=90)
    put("truncated.jpg", whole[: len(whole) // 2], False)
    put("random.jpg", np.random.default_rng(0).bytes(4000), False)
    png = io.BytesIO()
    Image.fromarray(big).save(png, "PNG")
    data = bytearray(png.getvalue())
    data[29] ^= 0xFF  # inside IHDR's CRC
    put("bad_crc.png", bytes(data), False)
    put("bomb.png", png_with_header(100_000, 100_000), False)
    for name, img in {
        "cmyk.jpg": Image.fromarray(big).convert("CMYK"),
        "grey_alpha.png": Image.fromarray(big).convert("LA"),
        "palette_transparent.png": Image.fromarray(big).convert("P"),
    }.items():
        kw = {"transparency": 0} if name.startswith("palette") else {}
        buf = io.BytesIO()
        img.save(buf, "JPEG" if name.endswith(".jpg") else "PNG", **kw)
        put(name, buf.getvalue(), True)
    sixteen = io.BytesIO()
    Image.fromarray(big[..., 0].astype(np.uint16) * 257).save(sixteen, "PNG")
    put("sixteen.png", sixteen.getvalue(), True)
    progressive = io.BytesIO()
    Image.fromarray(big).save(progressive, "JPEG", quality=90, progressive=True)
    put("progressive.jpg", progressive.getvalue(), True)
    put("exif_rotated.jpg", exif_rotated_jpeg(big), True)
    tiny = io.BytesIO()
    Image.fromarray(gradient(1, 1)).save(tiny, "PNG")
    put("one_pixel.png", tiny.getvalue(), True)
    line = io.BytesIO()
    Image.fromarray(gradient(65535, 1)).save(line, "PNG")
    put("line.png", line.getvalue(), True)
    # A non-UTF-8 file name, a directory named like an image, a symlink loop.
    os.makedirs(src, exist_ok=True)
    with open(os.path.join(os.fsencode(src), b"bad\xffname.png"), "wb") as f:
        Image.fromarray(big).save(f, "PNG")
    good.add(os.fsdecode(b"bad\xffname.png"))
    # Unreadable (chmod 000): a bad file, except for root, who reads it anyway.
    locked = io.BytesIO()
    Image.fromarray(big).save(locked, "PNG")
    put("unreadable.png", locked.getvalue(), os.geteuid() == 0)
    os.chmod(src / "unreadable.png", 0)
    (src / "folder.jpg").mkdir()
    (src / "loop").symlink_to(src, target_is_directory=True)
    return src, bad, good


def test_extraction_reports_every_bad_file_and_extracts_the_rest(corpus, tmp_path):
    src, bad, good = corpus
    s = dlas_fast.extract(src, tmp_path / "out", threads=2)
    failed = {Path(f.path).name for f in s.failed}
    skipped = {Path(f.path).name for f in s.skipped}
    assert failed == bad, (failed, bad)
    assert all(f.reason for f in s.failed)
    # The small ones are skipped by the size rule; every other good file is extracted.
    assert skipped == {"one_pixel.png", "line.png"}
    assert s.sources_extracted == len(good) - 2
    for name in ("cmyk", "grey_alpha", "palette_transparent", "sixteen", "progressive",
                 "exif_rotated"):  # fmt: skip
        assert (tmp_path / "out" / name / "centers.pt").exists(), name


def test_loading_the_corpus_skips_the_bad_files(corpus):
    src, bad, good = corpus
    ds = dlas_fast.create_dataset({"mode": "imagefolder", "paths": str(src), "target_size": 32,
                                   "scale": 2, "fixed_corruptions": ["jpeg"]})  # fmt: skip
    listed = {os.path.basename(p) for p in ds.get_paths()}
    assert listed == bad | good  # not the directory named folder.jpg, nothing via the loop
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        for i in range(len(ds)):
            out = ds[i]
            assert out["hq"].shape == (3, 32, 32) and out["lq"].shape == (3, 16, 16)
            assert os.path.basename(out["HQ_path"]) in good
    assert {os.path.basename(p) for p in ds.skipped_files} == bad
    strict = dlas_fast.create_dataset({"mode": "imagefolder", "paths": str(src),
                                       "target_size": 32, "on_error": "raise"})  # fmt: skip
    for i, path in enumerate(strict.get_paths()):
        if os.path.basename(path) in bad:
            with pytest.raises((dlas_fast.DlasError, OSError)):
                strict[i]


def test_a_rust_panic_is_a_python_exception():
    from dlas_fast import _native

    for _ in range(2):  # and the interpreter, and the extension, go on working
        with pytest.raises(BaseException, match="deliberate panic") as info:
            _native._panic_for_tests()
        assert type(info.value).__name__ == "PanicException"
    assert _native.jpeg_encoder()
