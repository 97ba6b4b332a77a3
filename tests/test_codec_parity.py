"""One JPEG codec, libjpeg-turbo, the library OpenCV uses: JPEG sources of every kind
decode to the pixels ``cv2.imdecode`` gives (DLAS reads images with OpenCV), or fail,
naming the file, where OpenCV cannot decode them; extracted tiles are what libjpeg
makes of the same crop."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
from pathlib import Path

import cv2
import dlas_fast
import numpy as np
import pytest
from conftest import gradient, save
from dlas_fast.datasets import ImageFolderDataset
from PIL import Image

# --- decoding ---------------------------------------------------------------------


def cv2_rgb(path: Path) -> np.ndarray | None:
    """What DLAS reads: OpenCV's decode (colour), as RGB; None when it cannot decode."""
    bgr = cv2.imdecode(np.fromfile(path, np.uint8), cv2.IMREAD_COLOR)
    return None if bgr is None else cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def decoded(folder: Path) -> dict[str, np.ndarray | dlas_fast.DlasError]:
    """Every image of `folder` as an ImageFolderDataset item (no resizing, cropping,
    flipping or corruption) back in uint8, or the error loading it raised."""
    opt = {"paths": str(folder), "scale": 1, "force_square": False, "disable_flip": True}
    ds = ImageFolderDataset(dict(opt, on_error="raise"))
    out = {}
    for i, path in enumerate(ds.get_paths()):
        try:
            hq = ds[i]["hq"].numpy().transpose(1, 2, 0)
            out[os.path.basename(path)] = np.rint(hq * 255).astype(np.uint8)
        except dlas_fast.DlasError as e:
            out[os.path.basename(path)] = e
    return out


def assert_decodes_as_opencv(folder: Path, names: list[str]) -> None:
    """Each file decodes to OpenCV's pixels exactly, or, where OpenCV cannot decode it,
    is a DecodeError naming the file."""
    got = decoded(folder)
    assert sorted(got) == sorted(names)
    for name in names:
        want = cv2_rgb(folder / name)
        if want is None:
            err = got[name]
            assert isinstance(err, dlas_fast.DecodeError), (name, err)
            assert err.path == str(folder / name) and name in str(err)
        else:
            assert isinstance(got[name], np.ndarray), (name, got[name])
            assert got[name].shape == want.shape, name
            differ = int((got[name] != want).sum())
            assert differ == 0, f"{name}: {differ} values differ from OpenCV's"


def textured(w: int, h: int, seed: int = 0) -> np.ndarray:
    """A busy colour image: a noisy gradient with sharp-edged colour blocks."""
    img = gradient(w, h, seed)
    rng = np.random.default_rng(seed + 100)
    for _ in range(12):
        y, x = rng.integers(0, h - 8), rng.integers(0, w - 8)
        img[y : y + rng.integers(4, 40), x : x + rng.integers(4, 40)] = rng.integers(0, 256, 3)
    return img


def has_marker(data: bytes, marker: int) -> bool:
    return bytes([0xFF, marker]) in data


SOF9, SOF10 = 0xC9, 0xCA  # arithmetic coding: sequential, progressive


def cjpeg(ppm: Path, out: Path, *switches: str) -> bytes:
    """`cjpeg` (libjpeg-turbo-progs) on a PPM: the encoder that writes arithmetic coding."""
    assert shutil.which("cjpeg"), "cjpeg is needed: install libjpeg-turbo-progs"
    subprocess.run(["cjpeg", *switches, "-outfile", str(out), str(ppm)], check=True)
    return out.read_bytes()


def test_arithmetic_coded_jpegs_decode_as_opencv(tmp_path):
    ppm = save(textured(203, 157), tmp_path / "texture.ppm")
    folder = tmp_path / "jpegs"
    folder.mkdir()
    made = {
        "arith.jpg": (["-arithmetic"], SOF9),
        "arith_progressive.jpg": (["-arithmetic", "-progressive"], SOF10),
        "arith_444.jpg": (["-arithmetic", "-sample", "1x1"], SOF9),
        "arith_q50.jpg": (["-arithmetic", "-quality", "50"], SOF9),
    }
    for name, (switches, sof) in made.items():
        data = cjpeg(ppm, folder / name, *switches)
        assert has_marker(data, sof), name  # the coding asked for
    # The Huffman-coded file of the same image: the same pixels (entropy coding is
    # lossless), so the arithmetic decode is not just OpenCV's but the right one.
    cjpeg(ppm, folder / "huffman.jpg")
    assert_decodes_as_opencv(folder, [*made, "huffman.jpg"])
    got = decoded(folder)
    assert np.array_equal(got["arith.jpg"], got["huffman.jpg"])


def test_truncated_arithmetic_jpegs_are_errors_naming_the_file(tmp_path):
    """Cut short, a file is an error (libjpeg's warning counts), never grey filler."""
    ppm = save(textured(160, 120), tmp_path / "texture.ppm")
    folder = tmp_path / "cut"
    folder.mkdir()
    cuts = {"cut.jpg": ["-arithmetic"], "cut_progressive.jpg": ["-arithmetic", "-progressive"]}
    for name, switches in cuts.items():
        whole = cjpeg(ppm, tmp_path / name, *switches)
        (folder / name).write_bytes(whole[: len(whole) * 2 // 3])
    for name, err in decoded(folder).items():
        assert isinstance(err, dlas_fast.DecodeError), name
        assert err.path == str(folder / name)


def test_warnings_about_markers_only_decode_as_opencv(tmp_path):
    """libjpeg-turbo warns, then decodes every pixel, for stray bytes between markers
    (common in files from the web) and an unknown JFIF revision: such files decode as
    OpenCV decodes them. Warnings that data is damaged or missing stay errors."""
    buf = io.BytesIO()
    Image.fromarray(textured(96, 64, seed=1)).save(buf, "JPEG", quality=90)
    data = buf.getvalue()
    assert data[2:4] == b"\xff\xe0" and data[6:11] == b"JFIF\x00"  # APP0, JFIF
    app0_end = 4 + int.from_bytes(data[4:6], "big")
    folder = tmp_path / "warned"
    folder.mkdir()
    (folder / "stray_bytes.jpg").write_bytes(data[:app0_end] + b"\x00\x00" + data[app0_end:])
    (folder / "jfif_3.jpg").write_bytes(data[:11] + b"\x03" + data[12:])
    assert_decodes_as_opencv(folder, ["stray_bytes.jpg", "jfif_3.jpg"])
    # A scan cut short (libjpeg's "premature end" warnings): an error, not grey fill.
    cut = tmp_path / "cut"
    cut.mkdir()
    (cut / "cut.jpg").write_bytes(data[: len(data) * 2 // 3])
    err = decoded(cut)["cut.jpg"]
    assert isinstance(err, dlas_fast.DecodeError) and err.path == str(cut / "cut.jpg")


def adobe_transform_at(data: bytes) -> int:
    """Offset of the colour transform byte of the APP14 "Adobe" segment."""
    at = data.index(b"\xff\xee")
    assert data[at + 4 : at + 9] == b"Adobe"
    return at + 4 + 5 + 2 + 2 + 2  # "Adobe", version, flags0, flags1


def test_cmyk_and_ycck_jpegs_decode_as_opencv(tmp_path):
    folder = tmp_path / "cmyk"
    rgb = textured(150, 98, seed=3)
    cmyk = save(Image.fromarray(rgb).convert("CMYK"), folder / "cmyk.jpg", quality=90)
    data = cmyk.read_bytes()
    at = adobe_transform_at(data)
    assert data[at] == 0  # plain (Adobe-inverted) CMYK
    # The same samples read as YCCK (transform 2): libjpeg converts them to CMYK first.
    (folder / "ycck.jpg").write_bytes(data[:at] + b"\x02" + data[at + 1 :])
    # CMYK whose K varies across the image (Pillow's conversion leaves K at 0).
    c, m, y = (255 - rgb[..., i] for i in range(3))
    k = np.tile(np.linspace(0, 255, 150, dtype=np.uint8), (98, 1))
    planes = np.ascontiguousarray(np.dstack([c, m, y, k]))
    save(Image.frombytes("CMYK", (150, 98), planes.tobytes()), folder / "cmyk_k.jpg", quality=92)
    assert_decodes_as_opencv(folder, ["cmyk.jpg", "ycck.jpg", "cmyk_k.jpg"])
    got = decoded(folder)
    # Not a grey or inverted mess: the CMYK round trip stays close to the picture.
    assert np.abs(got["cmyk.jpg"].astype(int) - rgb).mean() < 12


# Lossless (SOF3) and 12-bit JPEGs: no encoder at hand writes them (Pillow and cv2
# cannot, cjpeg 2.x neither), so these small writers make them by the standard.


class Bits:
    """An entropy-coded segment: bits MSB first, 0xFF bytes stuffed, 1-padded."""

    def __init__(self) -> None:
        self.out, self.acc, self.n = bytearray(), 0, 0

    def put(self, value: int, length: int) -> None:
        for i in range(length - 1, -1, -1):
            self.acc = (self.acc << 1) | ((value >> i) & 1)
            self.n += 1
            if self.n == 8:
                self.out.append(self.acc)
                if self.acc == 0xFF:
                    self.out.append(0)
                self.acc, self.n = 0, 0

    def bytes(self) -> bytes:
        while self.n:
            self.put(1, 1)
        return bytes(self.out)


def segment(marker: int, body: bytes) -> bytes:
    return bytes([0xFF, marker]) + (len(body) + 2).to_bytes(2, "big") + body


def lossless_jpeg(samples: np.ndarray, precision: int, ids: bytes) -> bytes:
    """A lossless JPEG (SOF3, predictor 1) of `samples` (H x W x components, each
    below 2**precision), one component per id."""
    h, w, nc = samples.shape
    s = samples.astype(np.int64)
    pred = np.empty_like(s)
    pred[0, 0] = 1 << (precision - 1)
    pred[0, 1:] = s[0, :-1]  # first line: the sample to the left
    pred[1:, 0] = s[:-1, 0]  # first column: the sample above
    pred[1:, 1:] = s[1:, :-1]
    diff = (s - pred).reshape(-1)
    # One Huffman table: categories 0..precision, 5-bit codes 0, 1, 2...
    cats = precision + 1
    counts = bytes([0, 0, 0, 0, cats] + [0] * 11)
    bits = Bits()
    for d in diff.tolist():
        cat = abs(d).bit_length()
        bits.put(cat, 5)
        if cat:
            bits.put(d if d > 0 else d + (1 << cat) - 1, cat)
    sof = bytes([precision]) + h.to_bytes(2, "big") + w.to_bytes(2, "big") + bytes([nc])
    sof += b"".join(bytes([i, 0x11, 0]) for i in ids)
    sos = bytes([nc]) + b"".join(bytes([i, 0x00]) for i in ids) + bytes([1, 0, 0])
    return (
        b"\xff\xd8"
        + segment(0xC3, sof)
        + segment(0xC4, b"\x00" + counts + bytes(range(cats)))
        + segment(0xDA, sos)
        + bits.bytes()
        + b"\xff\xd9"
    )


def twelve_bit_jpeg() -> bytes:
    """An 8x8 grey JPEG of 12-bit samples (SOF1): one block, DC only."""
    one_code = bytes([1] + [0] * 15)  # a single code of length 1
    return (
        b"\xff\xd8"
        + segment(0xDB, b"\x00" + bytes([1] * 64))
        + segment(0xC1, bytes([12, 0, 8, 0, 8, 1, 1, 0x11, 0]))
        + segment(0xC4, b"\x00" + one_code + b"\x00")
        + segment(0xC4, b"\x10" + one_code + b"\x00")
        + segment(0xDA, bytes([1, 1, 0x00, 0, 63, 0]))
        + bytes([0b0011_1111])  # DC difference 0, end of block, padding
        + b"\xff\xd9"
    )


def test_lossless_and_12_bit_jpegs_decode_or_fail_as_opencv(tmp_path):
    folder = tmp_path / "deep"
    folder.mkdir()
    rgb = textured(61, 37, seed=5)
    files = {
        # 8-bit lossless RGB (component ids R, G, B): OpenCV decodes it. Grey: OpenCV's
        # colour read cannot convert lossless grey, and neither do we (an error).
        "lossless_rgb.jpg": lossless_jpeg(rgb, 8, b"RGB"),
        "lossless_grey.jpg": lossless_jpeg(rgb[..., :1], 8, b"\x01"),
        # Component ids 1, 2, 3: read as YCbCr, converted to RGB.
        "lossless_ycc.jpg": lossless_jpeg(rgb, 8, b"\x01\x02\x03"),
        # More than 8 bits per sample: OpenCV reads JPEGs through libjpeg's 8-bit
        # interface and cannot decode them; neither do we (an error naming the file).
        "lossless_12.jpg": lossless_jpeg(rgb.astype(np.uint16) * 16, 12, b"RGB"),
        "lossless_16.jpg": lossless_jpeg(rgb.astype(np.uint16) * 64, 16, b"RGB"),
        "twelve_bit.jpg": twelve_bit_jpeg(),
    }
    for name, data in files.items():
        (folder / name).write_bytes(data)
    assert cv2_rgb(folder / "lossless_rgb.jpg") is not None
    assert cv2_rgb(folder / "twelve_bit.jpg") is None
    assert_decodes_as_opencv(folder, list(files))
    got = decoded(folder)
    assert np.array_equal(got["lossless_rgb.jpg"], rgb)  # lossless indeed
    for name in ("lossless_12.jpg", "lossless_16.jpg", "twelve_bit.jpg"):
        assert "-bit samples" in str(got[name]), got[name]


def test_extraction_fails_only_the_sources_opencv_cannot_decode(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    rgb = textured(300, 280, seed=6)
    save(Image.fromarray(rgb).convert("CMYK"), src / "cmyk.jpg", quality=90)
    (src / "lossless.jpg").write_bytes(lossless_jpeg(rgb, 8, b"RGB"))
    (src / "lossless_12.jpg").write_bytes(lossless_jpeg(rgb.astype(np.uint16) * 16, 12, b"RGB"))
    ppm = save(rgb, tmp_path / "rgb.ppm")
    cjpeg(ppm, src / "arith_progressive.jpg", "-arithmetic", "-progressive")
    s = dlas_fast.extract(src, tmp_path / "out", crop_sz=[128], step=[64], resize_final_img=[1],
                          min_size=128, threads=2)  # fmt: skip
    assert [Path(f.path).name for f in s.failed] == ["lossless_12.jpg"]
    assert "12-bit samples" in s.failed[0].reason
    assert s.sources_extracted == 3
    # The lossless source's first tile is its top-left crop of the centred square,
    # encoded: the same as the tile cut from the PNG of the same pixels.
    png = tmp_path / "png"
    save(rgb, png / "lossless.png")
    dlas_fast.extract(png, tmp_path / "out_png", crop_sz=[128], step=[64], resize_final_img=[1],
                      min_size=128, threads=2)  # fmt: skip
    a = (tmp_path / "out" / "lossless" / "00000001.jpg").read_bytes()
    assert a == (tmp_path / "out_png" / "lossless" / "00000001.jpg").read_bytes()


# --- encoding ---------------------------------------------------------------------


def tile_grid(dim: int, crop: int, step: int, thres: int) -> list[int]:
    """Tile offsets along one side of the centred square (DLAS's sliding window)."""
    out = list(range(0, dim - crop + 1, step))
    if dim - (out[-1] + crop) > thres:
        out.append(dim - crop)
    return out


def pillow_420(crop: np.ndarray, quality: int) -> np.ndarray:
    """`crop` encoded by Pillow (libjpeg) at `quality` with 4:2:0 chroma, decoded."""
    buf = io.BytesIO()
    Image.fromarray(crop).save(buf, "JPEG", quality=quality, subsampling=2)
    return cv2.imdecode(np.frombuffer(buf.getvalue(), np.uint8), cv2.IMREAD_COLOR)


@pytest.mark.parametrize("quality", [95, 60])
def test_tiles_are_libjpegs_encoding_of_the_crop(tmp_path, quality):
    """Level-0 tiles without resizing are plain crops of the centred square, encoded:
    each decodes exactly as Pillow's 4:2:0 encoding of that crop at that quality
    decodes (both are libjpeg: same colour conversion, box-filtered chroma, DCT and
    tables). Uniform noise makes any difference in chroma subsampling show: an encoder
    that subsamples chroma by picking one pixel of each 2x2 block is 19-35 dB off.
    The offsets include some off the 16-pixel MCU grid (the edge crop at 274), which
    are encoded from their own crop rather than from shared planes."""
    rng = np.random.default_rng(quality)
    h, w = 530, 560  # centred square: rows 0..530, columns 15..545
    noise = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    # An RGBA source whose fully transparent half holds noise: alpha is dropped, the
    # colour under it is extracted as it is.
    rgba = np.dstack([textured(w, h, seed=7), np.full((h, w), 255, np.uint8)])
    rgba[:, : w // 2, :3] = noise[:, : w // 2]
    rgba[:, : w // 2, 3] = 0
    src = tmp_path / "src"
    save(noise, src / "noise.png")
    save(Image.fromarray(rgba), src / "rgba.png")
    dst = tmp_path / "out"
    crop, step, thres = 256, 128, 0
    s = dlas_fast.extract(src, dst, crop_sz=[crop], step=[step], thres_sz=thres,
                          resize_final_img=[1], min_size=256, compression_level=quality,
                          threads=2)  # fmt: skip
    assert s.failed == [] and s.sources_extracted == 2
    dim = min(h, w)
    top, left = (h - dim) // 2, (w - dim) // 2
    grid = tile_grid(dim, crop, step, thres)
    assert grid == [0, 128, 256, 274]
    f = dim / crop  # ref pixels per source pixel: the tiles' centres are stored in those
    for name, img in (("noise", noise), ("rgba", rgba[..., :3])):
        centers = dlas_fast.read_centers(dst / name / "centers.pt")
        assert len(centers) == len(grid) ** 2
        tid = 0
        for r in grid:
            for c in grid:
                tid += 1
                assert centers[tid] == ((int((r + crop // 2) // f), int((c + crop // 2) // f)),
                                        int(crop // f))  # fmt: skip
                tile = cv2.imdecode(np.fromfile(dst / name / f"{tid:08d}.jpg", np.uint8),
                                    cv2.IMREAD_COLOR)  # fmt: skip
                want = pillow_420(img[top + r : top + r + crop, left + c : left + c + crop],
                                  quality)  # fmt: skip
                differ = int((tile != want).sum())
                assert differ == 0, f"{name} tile {tid} at ({r}, {c}): {differ} values differ"
