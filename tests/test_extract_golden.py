"""Extraction against what the original DLAS script produced (tests/data/extraction.json)."""

from __future__ import annotations

import json

import dlas_fast
import numpy as np
import pytest
import torch
from conftest import DATA
from PIL import Image

GOLDEN = json.loads((DATA / "extraction.json").read_text())["sources"]


def test_summary_counts(golden_extracted):
    dst, s = golden_extracted
    assert s.sources_seen == 6
    assert s.sources_extracted == 5
    assert [i.path.rsplit("/", 1)[-1] for i in s.skipped] == ["small_600x500.png"]
    assert "smaller side 500" in s.skipped[0].reason
    assert s.failed == []
    assert s.tiles_written == sum(g["tiles"] for g in GOLDEN.values())
    assert s.exit_code == 0
    assert not (dst / "small_600x500").exists()


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_tiles_match_dlas(golden_extracted, name):
    dst, _ = golden_extracted
    want = GOLDEN[name]
    chunk = dst / name
    tiles = sorted(p for p in chunk.iterdir() if p.name != "ref.jpg" and p.suffix == ".jpg")
    assert [p.name for p in tiles] == [f"{i:08d}.jpg" for i in range(1, want["tiles"] + 1)]
    centers = torch.load(chunk / "centers.pt", weights_only=True)
    assert list(centers) == list(range(1, want["tiles"] + 1))
    for (tid, ((r, c), w)), g, path in zip(centers.items(), want["tile_list"], tiles):
        assert [r, c] == g["center"], (name, tid)
        assert w == g["width"], (name, tid)
        img = np.asarray(Image.open(path).convert("RGB"), dtype=np.float64)
        assert list(img.shape[:2]) == g["size"]
        assert np.allclose(img.mean(axis=(0, 1)), g["mean_rgb"], atol=1.5), (name, tid)
    ref = np.asarray(Image.open(chunk / "ref.jpg").convert("RGB"), dtype=np.float64)
    assert list(ref.shape[:2]) == want["ref_size"]
    assert np.allclose(ref.mean(axis=(0, 1)), want["ref_mean_rgb"], atol=1.5)


def test_1024_square_gives_49_plus_9_tiles(golden_extracted):
    dst, _ = golden_extracted
    centers = dlas_fast.read_centers(dst / "square_1024" / "centers.pt")
    widths = [w for (_, w) in centers.values()]
    assert widths == [64] * 49 + [128] * 9
    firsts = [rc for rc, _ in centers.values()]
    assert firsts[0] == (32, 32) and firsts[48] == (224, 224)
    assert firsts[49] == (64, 64) and firsts[57] == (192, 192)


def test_centers_pt_is_plain_ints_for_torch(golden_extracted):
    dst, _ = golden_extracted
    for chunk in dst.iterdir():
        if chunk.name.startswith("."):
            continue
        got = torch.load(chunk / "centers.pt", weights_only=True)
        assert type(got) is dict
        for k, ((r, c), w) in got.items():
            assert all(type(v) is int for v in (k, r, c, w))
        assert got == dlas_fast.read_centers(chunk / "centers.pt")


def test_report_file_written(golden_extracted):
    dst, s = golden_extracted
    report = json.loads((dst / ".dlas_fast-report-1of1.json").read_text())
    assert report["tiles_written"] == s.tiles_written
    assert report["skipped"][0]["path"].endswith("small_600x500.png")
