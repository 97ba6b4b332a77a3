"""`dlas-fast inspect` and `dlas-fast verify`, run as `python -m dlas_fast ...`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import dlas_fast
import pytest
from conftest import gradient, save
from PIL import Image

CLI = [sys.executable, "-m", "dlas_fast"]
IMAGE_EXTS = (".jpg", ".JPG", ".jpeg", ".JPEG", ".png", ".PNG", ".ppm", ".PPM", ".bmp", ".BMP")
IMAGE_EXTS += (".webp", ".WEBP")


def run_cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *map(str, args)], capture_output=True, text=True, timeout=300)


def inspect_json(path: Path) -> dict:
    r = run_cli("inspect", path, "--json", "--threads", "2")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def age(root: Path, seconds: float = 60) -> None:
    """Moves every mtime under root out of the cache's racy window."""
    t = time.time() - seconds
    for p in [root, *root.rglob("*")]:
        os.utime(p, (t, t), follow_symlinks=False)


def image_size(path: Path) -> tuple[int, int]:
    with Image.open(path) as img:
        return img.size


def chunk_dirs(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def tiles_of(chunk: Path) -> list[Path]:
    return sorted(p for p in chunk.iterdir() if p.name.endswith(IMAGE_EXTS) and p.name != "ref.jpg")


def python_levels(root: Path) -> tuple[list[dict], int]:
    """Per level (the sorted distinct centre widths of each chunk): chunks and tiles,
    and the number of tiles without a centre, from centers.pt read by dlas_fast."""
    chunks, tiles, none = Counter(), Counter(), 0
    for chunk in chunk_dirs(root):
        centers = dlas_fast.read_centers(chunk / "centers.pt")
        widths = sorted({w for _, w in centers.values()})
        for level in range(len(widths)):
            chunks[level] += 1
        for tile in tiles_of(chunk):
            entry = centers.get(int(tile.stem))
            if entry is None:
                none += 1
            else:
                tiles[widths.index(entry[1])] += 1
    levels = [{"level": lv, "chunks": chunks[lv], "tiles": tiles[lv]} for lv in sorted(chunks)]
    return levels, none


@pytest.fixture
def dataset(tmp_path) -> Path:
    src = tmp_path / "src"
    save(gradient(1024, 1024, seed=3), src / "big.png")
    save(gradient(760, 640, seed=4), src / "wide.jpg", quality=90)
    dst = tmp_path / "ds"
    summary = dlas_fast.extract(src, dst, threads=2)
    assert summary.tiles_written > 0
    age(dst)
    return dst


def test_inspect_counts_what_the_loaders_see(dataset):
    cache_file = dataset / ".dlas_fast-index.bin"
    info = inspect_json(dataset)
    assert info["kind"] == "chunked"
    assert info["cache"]["state"] == "missing" and info["cache"]["path"] is None
    assert not cache_file.exists(), "inspect must not write the cache"

    index = dlas_fast.ChunkIndex(dataset, cache="off")
    assert info["chunks"] == index.num_chunks == len(chunk_dirs(dataset))
    assert info["tiles"] == index.num_tiles
    assert info["empty_chunks"]["count"] == 0
    assert info["without_ref"]["count"] == info["without_centers"]["count"] == 0

    levels, none = python_levels(dataset)
    assert [{k: lv[k] for k in ("level", "chunks", "tiles")} for lv in info["levels"]] == levels
    assert info["tiles_without_centre"] == none
    assert sum(lv["tiles"] for lv in info["levels"]) + none == info["tiles"]
    assert "level 0 is the smallest crop" in info["levels_definition"]

    tiles = [t for c in chunk_dirs(dataset) for t in tiles_of(c)]
    sizes = Counter(image_size(t) for t in tiles)
    assert {(s["width"], s["height"]): s["count"] for s in info["tile_sizes"]} == sizes
    refs = [c / "ref.jpg" for c in chunk_dirs(dataset)]
    ref_sizes = Counter(image_size(r) for r in refs)
    assert {(s["width"], s["height"]): s["count"] for s in info["ref_sizes"]} == ref_sizes

    disk = info["disk"]
    assert disk["tiles"] == sum(t.stat().st_size for t in tiles)
    assert disk["refs"] == sum(r.stat().st_size for r in refs)
    assert disk["centers"] == sum((c / "centers.pt").stat().st_size for c in chunk_dirs(dataset))
    everything = sum(p.stat().st_size for p in dataset.rglob("*") if p.is_file())
    assert disk["total"] == everything
    assert disk["other"] == everything - disk["tiles"] - disk["refs"] - disk["centers"]
    assert info["dlas_cache_pth"] is False

    # Loading the dataset writes the cache: fresh.
    opt = {"mode": "single_image_extensible", "paths": [str(dataset)], "weights": [1]}
    ds = dlas_fast.create_dataset(dict(opt, target_size=256, scale=1, eval=True))
    assert len(ds) == info["tiles"]
    assert cache_file.is_file()
    fresh = inspect_json(dataset)
    assert fresh["cache"]["state"] == "fresh"
    assert fresh["cache"]["path"] == str(cache_file)
    assert fresh["tiles"] == info["tiles"]

    # A new chunk folder: stale, and inspect leaves the cache file alone.
    before = cache_file.read_bytes()
    shutil.copytree(dataset / "big", dataset / "big_copy")
    (dataset / "cache.pth").write_bytes(b"a DLAS cache")
    stale = inspect_json(dataset)
    assert stale["cache"]["state"] == "stale"
    assert stale["cache"]["path"] == str(cache_file)
    assert stale["chunks"] == info["chunks"] + 1
    assert stale["tiles"] == info["tiles"] + len(tiles_of(dataset / "big"))
    assert stale["dlas_cache_pth"] is True
    assert cache_file.read_bytes() == before

    table = run_cli("inspect", dataset)
    assert table.returncode == 0, table.stderr
    assert "stale" in table.stdout and str(stale["tiles"]) in table.stdout
    assert "level 0 is the smallest crop" in table.stdout


def test_levels_of_a_1024_source(dataset, tmp_path):
    root = tmp_path / "only_big"
    root.mkdir()
    shutil.copytree(dataset / "big", root / "big")
    info = inspect_json(root)
    got = [(lv["level"], lv["chunks"], lv["tiles"]) for lv in info["levels"]]
    assert got == [(0, 1, 49), (1, 1, 9)]  # spec.md §2: default settings, 1024² source
    assert info["levels"][0]["max_width"] < info["levels"][1]["min_width"]


def test_inspect_an_image_folder(dataset, tmp_path):
    src = dataset.parent / "src"
    save(gradient(64, 48, seed=1), src / "sub" / "small.png")
    age(src)
    info = inspect_json(src)
    assert info["kind"] == "images"
    files = [p for p in src.rglob("*") if p.is_file() and p.name.endswith(IMAGE_EXTS)]
    assert info["images"] == len(files) and info["folders"] == 2
    assert {(s["width"], s["height"]): s["count"] for s in info["sizes"]} == Counter(
        image_size(p) for p in files
    )
    assert info["cache"]["state"] == "missing"
    assert not (src / ".dlas_fast-folder").exists()
    opt = {"mode": "imagefolder", "paths": str(src), "target_size": 32, "random_seed": 1}
    ds = dlas_fast.create_dataset(opt)
    assert len(ds) == info["images"]
    assert inspect_json(src)["cache"]["state"] == "fresh"


def test_verify_finds_a_truncated_tile(dataset):
    clean = run_cli("verify", dataset, "--threads", "2", "--json", "--quiet")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    report = json.loads(clean.stdout)
    chunks = chunk_dirs(dataset)
    images = [p for c in chunks for p in c.iterdir() if p.name.endswith(IMAGE_EXTS)]
    assert report["images"] == len(images)
    assert report["centers"] == len(chunks)
    assert report["files_checked"] == len(images) + len(chunks)
    assert report["broken"] == []

    victim = tiles_of(chunks[0])[3]
    data = victim.read_bytes()
    victim.write_bytes(data[: len(data) // 2])
    broken = run_cli("verify", dataset, "--no-progress-bar")
    assert broken.returncode == 3, broken.stdout + broken.stderr
    assert str(victim) in broken.stdout
    assert "broken: 1" in broken.stdout
    report = json.loads(run_cli("verify", dataset, "--json", "-q").stdout)
    assert [b["path"] for b in report["broken"]] == [str(victim)]

    (chunks[1] / "centers.pt").write_bytes(b"PK\x03\x04 not really")
    report = json.loads(run_cli("verify", dataset, "--json", "-q").stdout)
    assert [b["path"] for b in report["broken"]] == sorted(
        [str(victim), str(chunks[1] / "centers.pt")]
    )


def test_missing_path_exits_2(tmp_path):
    for command in ("verify", "inspect"):
        r = run_cli(command, tmp_path / "nope")
        assert r.returncode == 2, (command, r.stderr)
        assert "nope" in r.stderr
    a_file = tmp_path / "file.jpg"
    a_file.write_bytes(b"x")
    r = run_cli("verify", a_file)
    assert r.returncode == 2 and "file.jpg" in r.stderr


def test_preview_in_the_rust_cli_needs_python():
    # The Python entry point handles `preview` itself; the native CLI only explains.
    assert dlas_fast._native.cli_main(["dlas-fast", "preview", "--anything", "x"]) == 2
