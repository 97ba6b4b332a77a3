"""The chunk index and its cache (docs/spec.md §3), through the Python API."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import dlas_fast
import pytest
import torch
from dlas_fast import CentersFileError, ChunkedTiles, ChunkIndex

IMAGE_EXTS = (".jpg", ".JPG", ".jpeg", ".JPEG", ".png", ".PNG", ".ppm", ".PPM", ".bmp", ".BMP")
IMAGE_EXTS += (".webp", ".WEBP")


def dlas_tiles(chunk_dir: str) -> list[str]:
    """DLAS's tile listing (data.util._get_paths_from_images), re-implemented in Python."""
    out = []
    for dirpath, _dirs, names in sorted(os.walk(chunk_dir)):
        for name in sorted(names):
            if name.endswith(IMAGE_EXTS) and "ref.jpg" not in name:
                out.append(os.path.join(dirpath, name))
    return out


def dlas_get_paths(paths: list[str], weights: list[int], ignore_first: int) -> list[str]:
    """What DLAS's BaseUnsupervisedImageDataset.get_paths() returns for these options."""
    chunks = []
    for path, weight in zip(paths, weights):
        found = []
        for entry in sorted(os.scandir(path), key=lambda e: e.name):
            if entry.is_dir() and not entry.name.startswith("."):
                tiles = dlas_tiles(entry.path)[ignore_first:]
                if tiles:
                    found.append(tiles)
        for _ in range(weight):
            chunks.extend(found)
    return [t for c in chunks for t in c]


def make_chunk(root: Path, name: str, tiles: list[str], centers: dict | None = None) -> Path:
    d = root / name
    d.mkdir(parents=True, exist_ok=True)
    for t in tiles:
        (d / t).parent.mkdir(parents=True, exist_ok=True)
        (d / t).write_bytes(b"not decoded by the index")
    (d / "ref.jpg").write_bytes(b"ref")
    if centers is not None:
        torch.save(centers, d / "centers.pt")
    return d


def settle(*paths: Path, seconds: float = 30) -> None:
    """Moves these paths' mtimes (only) out of the racy window."""
    t = time.time() - seconds
    for p in paths:
        os.utime(p, (t, t))


def age(root: Path, seconds: float = 60) -> None:
    """Moves every mtime under root into the past (outside the racy window)."""
    t = time.time() - seconds
    for p in [root, *root.rglob("*")]:
        os.utime(p, (t, t), follow_symlinks=False)


@pytest.fixture
def tree(tmp_path) -> Path:
    root = tmp_path / "ds"
    make_chunk(root, "b", ["00000002.jpg", "00000001.jpg"], {1: ((10, 20), 64), 2: ((5, 6), 7)})
    make_chunk(root, "a", ["00000005.jpg", "x/00000009.png", "zz.JPG", "note.txt"])
    (root / "empty").mkdir()
    (root / "cache.pth").write_bytes(b"a DLAS cache, left alone")
    age(root)
    return root


def test_extracted_dataset_round_trip(golden_extracted):
    dst, summary = golden_extracted
    index = ChunkIndex(dst)
    assert index.num_tiles == summary.tiles_written
    names = [index.chunk_name(i) for i in range(index.num_chunks)]
    assert names == sorted(p.name for p in dst.iterdir() if not p.name.startswith("."))
    for c in range(index.num_chunks):
        centers = dlas_fast.read_centers(Path(index.chunk_dir(c)) / "centers.pt")
        assert index.ref_path(c) == os.path.join(dst, names[c], "ref.jpg")
        for t in range(index.chunk_len(c)):
            path = index.tile_path(c, t)
            tile_id = int(Path(path).stem)
            assert index.centre(c, t) == centers[tile_id]
    assert ChunkedTiles(str(dst)).get_paths() == dlas_get_paths([str(dst)], [1], 0)


@pytest.mark.parametrize(
    "weights,ignore_first", [([1, 1], 0), ([2, 1], 0), ([1, 3], 1), ([0, 1], 2)]
)
def test_items_follow_dlas_order_weights_and_ignore_first(tree, tmp_path, weights, ignore_first):
    other = tmp_path / "other"
    make_chunk(other, "c", ["1.jpg", "2.jpg", "3.jpg"])
    paths = [str(tree), str(other)]
    tiles = ChunkedTiles(paths, weights=weights, ignore_first=ignore_first)
    expected = dlas_get_paths(paths, weights, ignore_first)
    assert tiles.get_paths() == expected
    assert len(tiles) == len(expected)
    assert [tiles.tile_path(i) for i in range(len(tiles))] == expected
    if expected:
        assert tiles.tile_path(-1) == expected[-1]
    with pytest.raises(IndexError):
        tiles.tile_path(len(expected))


def test_centres_and_refs(tree):
    index = ChunkIndex(tree, cache="off")
    assert [index.chunk_name(i) for i in range(3)] == ["a", "b", "empty"]
    assert index.chunk_len(2) == 0
    assert [index.centre(1, t) for t in range(2)] == [((10, 20), 64), ((5, 6), 7)]
    assert index.centre(0, 0) is None  # no centers.pt
    assert index.ref_path(0).endswith("a/ref.jpg")
    assert index.cache_path is None and not (tree / ".dlas_fast-index.bin").exists()


def test_cache_written_in_the_root_and_reused(tree):
    first = ChunkIndex(tree)
    assert not first.from_cache
    assert first.cache_path == os.path.join(tree, ".dlas_fast-index.bin")
    again = ChunkIndex(tree)
    assert again.from_cache
    assert ChunkedTiles(tree).get_paths() == dlas_get_paths([str(tree)], [1], 0)
    assert (tree / "cache.pth").read_bytes() == b"a DLAS cache, left alone"


@pytest.mark.parametrize("change", ["add tile", "remove tile", "add chunk", "remove chunk",
                                    "rewrite centers", "add ref"])  # fmt: skip
def test_changes_rebuild_the_cache(tree, change):
    ChunkIndex(tree)
    assert ChunkIndex(tree).from_cache
    if change == "add tile":
        (tree / "b" / "00000003.jpg").write_bytes(b"x")
        settle(tree / "b")
    elif change == "remove tile":
        (tree / "b" / "00000002.jpg").unlink()
        settle(tree / "b")
    elif change == "add chunk":
        make_chunk(tree, "c", ["00000001.jpg"])
        settle(tree / "c")
    elif change == "remove chunk":
        shutil.rmtree(tree / "a")
    elif change == "rewrite centers":
        torch.save({1: ((1, 1), 1), 2: ((2, 2), 2)}, tree / "b" / "centers.pt")
        settle(tree / "b" / "centers.pt")
    elif change == "add ref":
        (tree / "empty" / "ref.jpg").write_bytes(b"r")
        settle(tree / "empty")
    rebuilt = ChunkIndex(tree)
    assert not rebuilt.from_cache
    assert ChunkIndex(tree).from_cache
    assert ChunkedTiles(tree).get_paths() == dlas_get_paths([str(tree)], [1], 0)
    if change == "rewrite centers":
        assert rebuilt.centre(1, 0) == ((1, 1), 1)


def test_moved_or_copied_with_times_kept_reuses_the_cache(tree, tmp_path):
    ChunkIndex(tree)
    copied = tmp_path / "copied"
    shutil.copytree(tree, copied)  # copy2 + copystat keep mtimes
    index = ChunkIndex(copied)
    assert index.from_cache
    assert index.tile_path(1, 0) == os.path.join(copied, "b", "00000001.jpg")
    moved = tmp_path / "moved"
    tree.rename(moved)
    assert ChunkIndex(moved).from_cache


def test_a_damaged_cache_is_rebuilt(tree):
    path = Path(ChunkIndex(tree).cache_path)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    assert not ChunkIndex(tree).from_cache
    assert ChunkIndex(tree).from_cache


def test_cache_options_never_matter(tree):
    ChunkIndex(tree)
    a = ChunkedTiles(tree, ignore_first=1)
    b = ChunkedTiles(tree, ignore_first=0)
    assert all(i.from_cache for i in a.indexes + b.indexes)
    assert len(b) - len(a) == 2


def test_unwritable_root_uses_the_user_cache(tree, tmp_path, monkeypatch):
    user = tmp_path / "usercache"
    monkeypatch.setenv("DLAS_FAST_CACHE", str(user))
    # As root, permissions do not stop writes: a folder where the cache file would go does.
    (tree / ".dlas_fast-index.bin").mkdir()
    first = ChunkIndex(tree)
    assert first.cache_path.startswith(str(user / "index"))
    assert ChunkIndex(tree).from_cache


def test_concurrent_builders_leave_a_valid_cache(tree):
    code = (
        "import sys, dlas_fast\n"
        "for _ in range(15):\n"
        "    dlas_fast.ChunkIndex(sys.argv[1], cache='rebuild')\n"
    )
    procs = [subprocess.Popen([sys.executable, "-c", code, str(tree)]) for _ in range(4)]
    assert all(p.wait(timeout=120) == 0 for p in procs)
    assert ChunkIndex(tree).from_cache
    assert not [p for p in tree.iterdir() if ".tmp-" in p.name]


OPEN_AT_ONCE = """
import json, sys, time
import dlas_fast
from dlas_fast._native import ImageFolderList
start = float(sys.argv[3])
time.sleep(max(0.0, start - time.time()))  # every process opens at the same moment
if sys.argv[1] == "chunks":
    print(json.dumps(dlas_fast.ChunkIndex(sys.argv[2]).from_cache))
else:
    print(json.dumps(ImageFolderList([sys.argv[2]], [1]).caches()[0][1]))
"""


@pytest.mark.parametrize("kind", ["chunks", "images"])
def test_processes_opening_one_root_at_once_build_it_once(tmp_path, kind):
    # Big enough that a build takes longer than the processes' start-time skew.
    root = tmp_path / "ds"
    for c in range(400):
        make_chunk(root, f"c{c:04d}", [f"{t:08d}.jpg" for t in range(1, 31)])
    age(root)
    start = str(time.time() + 3)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", OPEN_AT_ONCE, kind, str(root), start],
            stdout=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for _ in range(4)
    ]
    from_cache = [json.loads(p.communicate(timeout=120)[0]) for p in procs]
    # One built; the others waited for its lock and read its cache.
    assert sorted(from_cache) == [False, True, True, True]


def evil_centers(path: Path, marker: Path) -> None:
    """A torch-zip file whose pickle calls os.system (torch.load would run it)."""
    cmd = f"touch {marker}".encode()
    pickle = b"\x80\x02cos\nsystem\nq\x00X" + len(cmd).to_bytes(4, "little") + cmd
    pickle += b"q\x01\x85q\x02Rq\x03."
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("archive/data.pkl", pickle)
        z.writestr("archive/version", "3\n")


def test_malicious_centers_is_refused_and_runs_nothing(tree, tmp_path):
    marker = tmp_path / "pwned"
    evil_centers(tree / "b" / "centers.pt", marker)
    settle(tree / "b" / "centers.pt")
    index = ChunkIndex(tree)
    with pytest.raises(CentersFileError, match=r"centers\.pt.*GLOBAL"):
        index.centre(1, 0)
    assert "GLOBAL" in index.centers_error(1)
    assert index.centers_error(0) is None
    assert not marker.exists()
    assert ChunkIndex(tree).from_cache  # the refusal is cached too, still nothing run
    with pytest.raises(CentersFileError):
        ChunkIndex(tree).centre(1, 0)
    assert not marker.exists()


def test_dlas_written_dataset_loads(tmp_path):
    # DLAS numbers tiles across the whole run and names chunks freely; its centers.pt
    # may be in torch's legacy format.
    root = tmp_path / "dlas"
    make_chunk(root, "img_0001_left_0", ["00000001.jpg", "00000002.jpg"])
    torch.save({1: ((3, 4), 5), 2: ((6, 7), 8)}, root / "img_0001_left_0" / "centers.pt",
               _use_new_zipfile_serialization=False)  # fmt: skip
    make_chunk(root, "img_0001_right_1", ["00000004.jpg", "00000003.jpg"],
               {3: ((1, 1), 2), 4: ((9, 9), 9)})  # fmt: skip
    index = ChunkIndex(root, cache="off")
    assert index.centre(0, 1) == ((6, 7), 8)
    assert index.tile_path(1, 0).endswith("img_0001_right_1/00000003.jpg")
    assert index.centre(1, 1) == ((9, 9), 9)


def test_a_missing_root_names_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        ChunkIndex(tmp_path / "nowhere")
    with pytest.raises(ValueError, match="cache"):
        ChunkIndex(tmp_path, cache="sometimes")
    with pytest.raises(ValueError, match="weights"):
        ChunkedTiles([tmp_path, tmp_path], weights=[1])


def test_resident_bytes_per_tile(tmp_path):
    root = tmp_path / "many"
    for c in range(20):
        d = root / f"c{c:03d}"
        d.mkdir(parents=True)
        for t in range(1, 201):
            (d / f"{t:08d}.jpg").touch()
        dlas_fast.write_centers(d / "centers.pt", [(t, (t, t), 64) for t in range(1, 201)])
    index = ChunkIndex(root, cache="off")
    assert index.num_tiles == 4000
    assert index.resident_bytes / index.num_tiles < 16 + 1  # 16 per tile + per-chunk overhead


def test_a_cache_from_a_newer_format_is_rebuilt(tree):
    # A valid file (its checksum matches) of another format version is not trusted.
    import zlib

    path = Path(ChunkIndex(tree).cache_path)
    data = bytearray(path.read_bytes()[:-4])
    data[8:12] = (99).to_bytes(4, "little")  # the version, after the 8-byte magic
    path.write_bytes(bytes(data) + zlib.crc32(bytes(data)).to_bytes(4, "little"))
    assert not ChunkIndex(tree).from_cache
    assert ChunkIndex(tree).from_cache
