"""``dlas-fast preview``: the contact sheet's size and panels, from a dataset folder and
from a training config, and the corruption sheet."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import dlas_fast
import numpy as np
import pytest
from conftest import gradient, save
from dlas_fast import preview
from PIL import Image

CELL = 64


@pytest.fixture(scope="module")
def chunked(tmp_path_factory) -> Path:
    src = tmp_path_factory.mktemp("pv_src")
    for i in range(2):
        save(gradient(640, 560, seed=i), src / f"photo{i}.png")
    dst = tmp_path_factory.mktemp("pv") / "ds"
    dlas_fast.extract(src, dst, crop_sz=[256], step=[128], resize_final_img=[1])
    return dst


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("pv_photos")
    for i in range(3):
        save(gradient(96 + 16 * i, 80, seed=10 + i), root / f"img{i}.jpg")
    return root


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "dlas_fast", "preview", *args],
        capture_output=True,
        text=True,
    )


def panel(sheet: np.ndarray, row: int, col: int, cell=(CELL, CELL)) -> np.ndarray:
    """Panel (row, col) of a sheet laid out by preview.compose."""
    ch, cw = cell
    y = preview.LABEL_H + preview.PAD + row * (2 * preview.LABEL_H + ch + preview.PAD)
    y += 2 * preview.LABEL_H
    x = preview.PAD + col * (cw + preview.PAD)
    return sheet[y : y + ch, x : x + cw].astype(np.int32)


def sheet_size(rows: int, cols: int, cell=(CELL, CELL)) -> tuple[int, int]:
    ch, cw = cell
    width = preview.PAD + cols * (cw + preview.PAD)
    height = preview.LABEL_H + preview.PAD + rows * (2 * preview.LABEL_H + ch + preview.PAD)
    return width, height


def test_sample_sheet_of_a_chunked_folder(chunked, tmp_path):
    out = tmp_path / "grid.png"
    r = run(str(chunked), "--out", str(out), "-n", "4", "--cell", str(CELL))
    assert r.returncode == 0, r.stderr
    assert "4 samples" in r.stdout
    sheet = np.asarray(Image.open(out).convert("RGB"))
    # hq, lq, ref + mask: three panels per sample.
    assert (sheet.shape[1], sheet.shape[0]) == sheet_size(4, 3)
    hq, lq, ref = (panel(sheet, 0, c) for c in range(3))
    # Default options: scale 1, so LQ = HQ; the ref shows the whole source, not the tile.
    assert np.abs(hq - lq).max() <= 1
    assert np.abs(hq - ref).mean() > 5
    # The mask is drawn in red over the tile's place, which moves from sample to sample.
    red = [(panel(sheet, i, 2) == (255, 38, 38)).all(axis=2) for i in range(4)]
    assert all(m.sum() > 0 for m in red)
    assert any((red[0] != red[i]).any() for i in range(1, 4))
    # Samples are different tiles.
    assert np.abs(panel(sheet, 0, 0) - panel(sheet, 3, 0)).mean() > 2


def test_lq_is_shown_at_the_hq_size(chunked, tmp_path):
    out = tmp_path / "grid.png"
    r = run(str(chunked), "--out", str(out), "-n", "1", "--option", "scale=4", "--cell", "256")
    assert r.returncode == 0, r.stderr
    sheet = np.asarray(Image.open(out).convert("RGB"))
    assert (sheet.shape[1], sheet.shape[0]) == sheet_size(1, 3, (256, 256))
    lq = panel(sheet, 0, 1, (256, 256))
    # Scaled up 4x by nearest neighbour: every 4x4 block is one colour.
    assert (lq[::4, ::4] == lq[3::4, 3::4]).all()
    assert (lq[::4, ::4] != lq[4::4, ::4][:1]).any()


def test_sample_sheet_from_a_training_config(photos, tmp_path):
    config = tmp_path / "train.yml"
    config.write_text(
        "name: test\n"
        "datasets:\n"
        "  train:\n"
        "    name: photos\n"
        "    mode: imagefolder\n"
        f"    paths: {photos}\n"
        "    target_size: 64\n"
        "    scale: 2\n"
        "    batch_size: 4\n"
        "    n_workers: 0\n"
        "    fixed_corruptions: [gaussian_blur]\n"
        "    random_seed: 3\n"
    )
    out = tmp_path / "grid.png"
    r = run("--config", str(config), "--dataset", "train", "--out", str(out), "--cell", "64")
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""  # the trainer's keys are not reported as unknown
    sheet = np.asarray(Image.open(out).convert("RGB"))
    assert (sheet.shape[1], sheet.shape[0]) == sheet_size(3, 2)
    hq, lq = panel(sheet, 0, 0), panel(sheet, 0, 1)
    assert 0 < np.abs(hq - lq).mean() < 40  # LQ: blurred and shrunk, same picture


def test_corruption_sheet(chunked, tmp_path):
    out = tmp_path / "c.png"
    r = run(
        str(chunked),
        "--out",
        str(out),
        "--corruptions",
        "--option",
        "fixed_corruptions=[gaussian_blur, jpeg-broad]",
        "--strengths",
        "0,0.5,1",
        "--cell",
        str(CELL),
    )
    assert r.returncode == 0, r.stderr
    sheet = np.asarray(Image.open(out).convert("RGB"))
    # Two corruptions, each: the original and three strengths.
    assert (sheet.shape[1], sheet.shape[0]) == sheet_size(2, 4)
    for row in range(2):
        original = panel(sheet, row, 0)
        d = [np.abs(panel(sheet, row, c) - original).mean() for c in (1, 2, 3)]
        assert d[2] > d[0] and d[2] > 0.5, (row, d)
    # Strength 0 of a blur changes nothing.
    assert np.abs(panel(sheet, 0, 1) - panel(sheet, 0, 0)).max() == 0


def test_degradation_sheet_shows_each_stage(chunked, tmp_path):
    out = tmp_path / "d.png"
    args = [str(chunked), "--out", str(out), "--corruptions", "-n", "3", "--cell", str(CELL)]
    r = run(*args, "--option", "degradation=realesrgan", "--option", "scale=4")
    assert r.returncode == 0, r.stderr
    assert "3 draws" in r.stdout
    sheet = np.asarray(Image.open(out).convert("RGB"))
    # The HQ image, then usm, blur1, resize1, noise1, jpeg1, blur2, resize2, noise2,
    # jpeg2 and resize_sinc (in the drawn order), and the LQ image.
    assert (sheet.shape[1], sheet.shape[0]) == sheet_size(3, 12)
    for row in range(3):
        hq, lq = panel(sheet, row, 0), panel(sheet, row, 11)
        assert np.abs(lq - hq).mean() > 2, row
    # Each row is its own draw.
    assert np.abs(panel(sheet, 0, 11) - panel(sheet, 1, 11)).mean() > 0.5


def test_unknown_options_are_named_and_strict_refuses_them(photos, tmp_path):
    config = tmp_path / "train.yml"
    config.write_text(
        f"datasets:\n  train:\n    mode: imagefolder\n    paths: {photos}\n    targt_size: 64\n"
    )
    out = tmp_path / "g.png"
    args = ["--config", str(config), "--dataset", "train", "--out", str(out)]
    r = run(*args)
    assert r.returncode == 0
    assert "targt_size" in r.stderr
    out.unlink()
    r = run(*args, "--strict")
    assert r.returncode == 2
    assert "targt_size" in r.stderr
    assert not out.exists()


def test_usage_errors(chunked, tmp_path):
    r = run(str(tmp_path / "nope"), "--out", str(tmp_path / "x.png"))
    assert r.returncode == 2 and "nope" in r.stderr
    r = run("--config", str(tmp_path / "missing.yml"), "--dataset", "train")
    assert r.returncode == 2 and "missing.yml" in r.stderr
    r = run(str(chunked), "--dataset", "train")
    assert r.returncode == 2
    assert not (tmp_path / "x.png").exists()


def test_the_corruptions_show_on_a_textured_item_and_the_png_follows_the_umask(chunked, tmp_path):
    import os

    import torch

    flat = {"hq": torch.full((3, 32, 32), 0.5), "GT_path": "a/flat.png"}
    busy = {"hq": torch.from_numpy(gradient(32, 32, seed=3).transpose(2, 0, 1) / 255.0),
            "GT_path": "a/busy.png"}  # fmt: skip
    index, item, image = preview.textured_item([flat, flat, busy, flat])
    assert index == 2 and item is busy and image.shape == (32, 32, 3)
    out = tmp_path / "c.png"
    old = os.umask(0o022)
    try:
        r = run(str(chunked), "--out", str(out), "--corruptions", "--cell", str(CELL))
    finally:
        os.umask(old)
    assert r.returncode == 0, r.stderr
    assert out.stat().st_mode & 0o777 == 0o644
    assert "random_seed" not in r.stderr  # preview's own options draw no warning
