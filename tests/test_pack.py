"""`dlas-fast pack` / `dlas_fast.pack`: a chunked dataset as tar shards (docs/shards.md).

The shards are checked with tools that are not ours: GNU tar (`tar -x` of every shard
gives the chunk folders back byte for byte) and Python's `tarfile`; the sidecar
indexes against the bytes at the offsets they give."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import dlas_fast
import pytest
from conftest import tree_bytes

CLI = [sys.executable, "-m", "dlas_fast"]


def run_cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *map(str, args)], capture_output=True, text=True, timeout=300)


@pytest.fixture
def dataset(golden_extracted, tmp_path) -> Path:
    """A copy of the golden chunked dataset (tests add odd files to it)."""
    src, _ = golden_extracted
    dst = tmp_path / "ds"
    shutil.copytree(src, dst, symlinks=True)
    return dst


def chunk_files(root: Path) -> dict[str, bytes]:
    """What the pack holds: the files of the chunk folders (not the root's own)."""
    return {k: v for k, v in tree_bytes(root).items() if "/" in k}


def manifest(out: Path) -> dict:
    return json.loads((out / "dlas_fast-pack.json").read_text())


def untar_all(out: Path, dest: Path) -> dict[str, bytes]:
    dest.mkdir()
    for shard in manifest(out)["shards"]:
        subprocess.run(["tar", "-xf", str(out / shard["tar"]), "-C", str(dest)], check=True)
    return tree_bytes(dest)


def digests(out: Path) -> list[str]:
    return [hashlib.sha256((out / s["tar"]).read_bytes()).hexdigest()
            for s in manifest(out)["shards"]]  # fmt: skip


def test_tar_x_of_every_shard_gives_the_dataset_back(dataset, tmp_path):
    out = tmp_path / "shards"
    summary = dlas_fast.pack(dataset, out, shard_size="2MiB", threads=2)
    files = chunk_files(dataset)
    assert len(summary.shards) >= 3 and summary.written == len(summary.shards)
    assert summary.files == len(files) and summary.skipped == []
    assert summary.bytes == sum((out / s).stat().st_size for s in summary.shards)
    assert untar_all(out, tmp_path / "untarred") == files
    # Whole chunks per shard, in name order, and each shard near the size asked for.
    seen = []
    for shard in manifest(out)["shards"]:
        with tarfile.open(out / shard["tar"]) as tar:
            names = tar.getnames()
        chunks = list(dict.fromkeys(n.split("/")[0] for n in names))
        assert not set(chunks) & set(seen)
        seen += chunks
        # At most the size asked for, unless one chunk alone is larger.
        assert shard["size"] <= 2 * 2**20 or len(chunks) == 1, shard
        assert shard["chunks"] == len(chunks)
    assert seen == sorted(seen)


def test_sidecars_give_every_members_bytes(dataset, tmp_path):
    out = tmp_path / "shards"
    dlas_fast.pack(dataset, out, shard_size="4MiB")
    files = chunk_files(dataset)
    found = {}
    for shard in manifest(out)["shards"]:
        index = json.loads((out / shard["index"]).read_text())
        assert index["format"] == "dlas_fast.shard/1" and index["tar"] == shard["tar"]
        data = (out / shard["tar"]).read_bytes()
        assert index["size"] == len(data)
        with tarfile.open(out / shard["tar"]) as tar:
            members = {m.name: m for m in tar.getmembers()}
        for path, offset, size, mtime, mtime_ns in index["members"]:
            found[path] = data[offset : offset + size]
            assert members[path].offset_data == offset and members[path].size == size
            assert members[path].mtime == mtime == mtime_ns // 10**9
            assert members[path].mode == 0o644 and members[path].isfile()
    assert found == files


def test_the_same_bytes_whatever_the_threads(dataset, tmp_path):
    dlas_fast.pack(dataset, tmp_path / "one", shard_size="3MiB", threads=1)
    dlas_fast.pack(dataset, tmp_path / "two", shard_size="3MiB", threads=2)
    assert digests(tmp_path / "one") == digests(tmp_path / "two")


def test_long_names_odd_names_and_files_that_are_not_packed(dataset, tmp_path):
    chunk = sorted(p for p in dataset.iterdir() if p.is_dir())[0]
    long_name = "n" * 250 + ".jpg"  # a file name near Linux's limit: a 280-byte path
    (chunk / long_name).write_bytes(b"a long name")
    deep = chunk / ("d" * 140) / ("e" * 140)
    deep.mkdir(parents=True)
    (deep / "00000077.jpg").write_bytes(b"deep")
    (chunk / "caf\u00e9 \u2603.jpg").write_bytes(b"unicode")
    os.mkfifo(chunk / "pipe.jpg")
    os.symlink("/etc/hostname", chunk / "outside.jpg")
    out = tmp_path / "shards"
    r = run_cli("pack", dataset, out, "--shard-size", "64MiB", "--threads", "2")
    assert r.returncode == 3, r.stderr  # files were left out: named, and the status says so
    assert "pipe.jpg" in r.stdout and "FIFO" in r.stdout
    assert "outside.jpg" in r.stdout and "outside the dataset" in r.stdout
    back = untar_all(out, tmp_path / "untarred")
    expected = {k: v for k, v in chunk_files(dataset).items()
                if not k.endswith(("pipe.jpg", "outside.jpg"))}  # fmt: skip
    assert back == expected
    assert back[f"{chunk.name}/{long_name}"] == b"a long name"


def test_a_stopped_pack_resumes_and_changes_rewrite_their_shard(dataset, tmp_path):
    out = tmp_path / "shards"
    first = dlas_fast.pack(dataset, out, shard_size="2MiB")
    whole = digests(out)
    # A shard lost (and a part-written one left) as a killed run would leave them.
    (out / first.shards[1]).unlink()
    (out / ".dlas_fast-shard-000001.tar.part").write_bytes(b"half")
    again = dlas_fast.pack(dataset, out, shard_size="2MiB")
    assert (again.written, again.kept) == (1, len(first.shards) - 1)
    assert digests(out) == whole
    # A changed tile rewrites the one shard that holds it.
    chunk = sorted(p for p in dataset.iterdir() if p.is_dir())[-1]
    tile = sorted(chunk.glob("*.jpg"))[0]
    data = bytearray(tile.read_bytes())
    data[-3] ^= 0xFF  # same size: the plan's shards stay as they were
    tile.write_bytes(bytes(data))
    os.utime(tile, (1, 1))
    changed = dlas_fast.pack(dataset, out, shard_size="2MiB")
    assert changed.written == 1
    assert untar_all(out, tmp_path / "untarred") == chunk_files(dataset)
    # A smaller shard count later: the earlier pack's extra shards are named, not removed.
    fewer = dlas_fast.pack(dataset, out, shard_size="1GiB")
    assert len(fewer.shards) == 1 and fewer.left_over == first.shards[1:]
    assert all((out / s).exists() for s in first.shards)
    assert [s["tar"] for s in manifest(out)["shards"]] == fewer.shards


def test_out_is_refused_where_it_would_mix_with_the_dataset(dataset, tmp_path):
    for out in (dataset, dataset / "packed", tmp_path):
        r = run_cli("pack", dataset, out)
        assert r.returncode == 2, (out, r.stderr)
        assert "dataset" in r.stderr and "nothing was written" in r.stderr
    assert not (dataset / "packed").exists()
    with pytest.raises(dlas_fast.DestinationError, match="dataset"):
        dlas_fast.pack(dataset, dataset / "packed")
    # Files of someone else's under the pack's names are left alone.
    out = tmp_path / "shards"
    out.mkdir()
    (out / "shard-000000.tar").write_bytes(b"not ours")
    with pytest.raises(dlas_fast.DestinationError, match="not written by"):
        dlas_fast.pack(dataset, out)
    assert (out / "shard-000000.tar").read_bytes() == b"not ours"


@pytest.mark.parametrize("size", ["12", "1.5GiB", "-1", "3 parsecs", "0"])
def test_bad_shard_sizes_are_named(dataset, tmp_path, size):
    r = run_cli("pack", dataset, tmp_path / "shards", "--shard-size", size)
    assert r.returncode == 2 and "shard-size" in r.stderr, r.stderr
    with pytest.raises(ValueError, match="shard_size"):
        dlas_fast.pack(dataset, tmp_path / "shards", shard_size=size)
    assert not (tmp_path / "shards").exists()


# Reading a pack in place: the chunked datasets take a pack's folder in `paths`.

OPT = {"target_size": 64, "scale": 2, "random_seed": 4, "need_ref": True, "strict": True,
       "fixed_corruptions": ["jpeg-broad", "gaussian_blur"]}  # fmt: skip


def same_items(a, b, root_a: Path, root_b: Path) -> None:
    import torch

    assert len(a) == len(b)
    for i in range(len(a)):
        x, y = a[i], b[i]
        assert list(x) == list(y)
        for k in x:
            if isinstance(x[k], torch.Tensor):
                assert x[k].equal(y[k]), (i, k)
            elif k.endswith("_path") or k.endswith("PATH"):
                rel = lambda p, r: os.path.relpath(p, r)  # noqa: E731
                assert rel(x[k], root_a) == rel(y[k], root_b), (i, k)


@pytest.mark.parametrize("mode", ["single_image_extensible", "multi_frame_extensible"])
def test_a_packs_folder_gives_the_items_of_the_unpacked_dataset(dataset, tmp_path, mode):
    out = tmp_path / "shards"
    dlas_fast.pack(dataset, out, shard_size="2MiB")
    extra = {"num_frames": 2} if mode == "multi_frame_extensible" else {}
    loose = dlas_fast.create_dataset({**OPT, **extra, "mode": mode, "paths": str(dataset)})
    packed = dlas_fast.create_dataset({**OPT, **extra, "mode": mode, "paths": str(out)})
    same_items(loose, packed, dataset, out)


@pytest.mark.parametrize("context", ["fork", "spawn"])
def test_loader_workers_read_the_pack(dataset, tmp_path, context):
    import torch

    out = tmp_path / "shards"
    dlas_fast.pack(dataset, out, shard_size="2MiB")
    batches = []
    for root in (dataset, out):
        ds = dlas_fast.create_dataset({**OPT, "mode": "single_image_extensible",
                                       "paths": str(root)})  # fmt: skip
        loader = torch.utils.data.DataLoader(ds, batch_size=8, num_workers=2,
                                             multiprocessing_context=context)  # fmt: skip
        batches.append([(b["hq"], b["lq"], b["gt_fullsize_ref"]) for b in loader])
    for x, y in zip(*batches, strict=True):
        assert all(a.equal(b) for a, b in zip(x, y))


def test_packs_and_chunk_folders_mix_in_paths(dataset, tmp_path):
    chunks = sorted(p for p in dataset.iterdir() if p.is_dir())
    half = tmp_path / "half"
    half.mkdir()
    for c in chunks[: len(chunks) // 2]:
        shutil.move(str(c), half / c.name)
    out = tmp_path / "shards"
    dlas_fast.pack(half, out, shard_size="1MiB")
    whole = tmp_path / "whole"
    shutil.copytree(half, whole)
    for c in sorted(p for p in dataset.iterdir() if p.is_dir()):
        shutil.copytree(c, whole / c.name)
    opt = {**OPT, "mode": "single_image_extensible"}
    a = dlas_fast.create_dataset({**opt, "paths": [str(half), str(dataset)]})
    b = dlas_fast.create_dataset({**opt, "paths": [str(out), str(dataset)]})
    assert len(a) == len(b) > 0
    for i in range(len(a)):
        assert a[i]["hq"].equal(b[i]["hq"]) and a[i]["lq"].equal(b[i]["lq"])


def test_damaged_packs_are_named_errors_never_other_tiles(dataset, tmp_path):
    opt = {**OPT, "mode": "single_image_extensible", "on_error": "raise"}

    def fresh(name):
        out = tmp_path / name
        dlas_fast.pack(dataset, out, shard_size="2MiB")
        return out

    # A truncated shard: named when the dataset is built.
    out = fresh("truncated")
    shard = out / manifest(out)["shards"][1]["tar"]
    shard.write_bytes(shard.read_bytes()[:-5000])
    with pytest.raises(OSError, match=f"{shard.name}.*truncated"):
        dlas_fast.create_dataset({**opt, "paths": str(out)})
    # A sidecar whose offsets disagree with its shard: the read names shard and offset.
    out = fresh("disagree")
    index_path = out / manifest(out)["shards"][0]["index"]
    index = json.loads(index_path.read_text())
    first, second = index["members"][0], index["members"][1]
    first[1], second[1] = second[1], first[1]  # two members' offsets swapped
    index_path.write_text(json.dumps(index))
    ds = dlas_fast.create_dataset({**opt, "paths": str(out)})
    tile = next(i for i in range(len(ds)) if ds.get_paths()[i].endswith(first[0]))
    with pytest.raises(OSError, match=r"shard-000000\.tar: the member at offset \d+ is not"):
        ds[tile]
    # Member paths that leave the folder are refused by name.
    for bad in ("../outside.jpg", "/etc/hostname", "a//b.jpg"):
        out = fresh(f"bad{len(bad)}")
        index_path = out / manifest(out)["shards"][0]["index"]
        index = json.loads(index_path.read_text())
        index["members"][0][0] = bad
        index_path.write_text(json.dumps(index))
        with pytest.raises(OSError, match="not a plain relative path"):
            dlas_fast.create_dataset({**opt, "paths": str(out)})


def test_a_pack_written_again_is_read_again(dataset, tmp_path):
    out = tmp_path / "shards"
    dlas_fast.pack(dataset, out, shard_size="2MiB")
    opt = {**OPT, "mode": "single_image_extensible", "paths": str(out)}
    first = dlas_fast.create_dataset(opt)
    before, tile = first[0]["hq"], Path(first.get_paths()[0])
    # The tile changed in the dataset, and the dataset packed again into the same folder.
    other = sorted(dataset.rglob("0*.jpg"))[-1]
    (dataset / tile.relative_to(out)).write_bytes(other.read_bytes())
    dlas_fast.pack(dataset, out, shard_size="2MiB")
    after = dlas_fast.create_dataset(opt)
    assert after.get_paths()[0] == str(tile)
    assert not after[0]["hq"].equal(before)


def test_a_sidecar_pointing_at_another_file_of_the_same_size_is_caught(dataset, tmp_path):
    # Two chunks whose first tiles have the same size, one with a name long enough to
    # need a pax record; each sidecar entry pointed at the other's bytes.
    chunks = sorted(p for p in dataset.iterdir() if p.is_dir())
    long_chunk = chunks[1].rename(dataset / ("B" * 200))
    twin = dataset / ("x" + chunks[0].name)
    shutil.copytree(chunks[0], twin)
    a, b = chunks[0] / "00000001.jpg", long_chunk / "00000001.jpg"
    size = min(a.stat().st_size, b.stat().st_size)
    for f in (a, b, twin / "00000001.jpg"):
        f.write_bytes(f.read_bytes()[:size])
    out = tmp_path / "shards"
    dlas_fast.pack(dataset, out, shard_size="1GiB")
    index_path = out / manifest(out)["shards"][0]["index"]
    index = json.loads(index_path.read_text())
    by_path = {m[0]: m for m in index["members"]}
    first = f"{chunks[0].name}/00000001.jpg"
    for x, y in ((first, f"{twin.name}/00000001.jpg"), (first, f"{long_chunk.name}/00000001.jpg")):
        saved = json.loads(index_path.read_text())
        by_path[y][1] = by_path[x][1]
        index_path.write_text(json.dumps(index))
        ds = dlas_fast.create_dataset({**OPT, "mode": "single_image_extensible",
                                       "paths": str(out), "on_error": "raise"})  # fmt: skip
        i = ds.get_paths().index(str(out / y))
        with pytest.raises(OSError, match="names another file"):
            ds[i]
        index = saved
        by_path = {m[0]: m for m in index["members"]}
        index_path.write_text(json.dumps(index))


def test_links_to_out_and_planted_links_in_out_change_nothing_outside(dataset, tmp_path):
    out = tmp_path / "shards"
    out.mkdir()
    os.symlink(out, dataset / "zz_link_to_out")
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    os.symlink(victim, out / ".dlas_fast-shard-000000.tar.part")
    r = run_cli("pack", dataset, out, "--shard-size", "1GiB")
    assert r.returncode == 3 and "zz_link_to_out" in r.stdout and "OUT" in r.stdout, r.stdout
    assert victim.read_text() == "keep me"
    again = dlas_fast.pack(dataset, out, shard_size="1GiB")
    assert (again.written, again.kept) == (0, 1)  # the pack did not take itself in
    (out / "dlas_fast-pack.json").unlink()
    r = run_cli("pack", dataset, out / "shard-000000.tar")  # a file, not a folder
    assert r.returncode == 2 and "not a folder" in r.stderr, r.stderr


def test_a_change_within_the_same_second_is_packed_again(dataset, tmp_path):
    out = tmp_path / "shards"
    tile = sorted(sorted(p for p in dataset.iterdir() if p.is_dir())[0].glob("0*.jpg"))[0]
    os.utime(tile, ns=(1_700_000_000_100_000_000,) * 2)
    dlas_fast.pack(dataset, out, shard_size="1GiB")
    data = bytearray(tile.read_bytes())
    data[-3] ^= 0xFF
    tile.write_bytes(bytes(data))
    os.utime(tile, ns=(1_700_000_000_900_000_000,) * 2)  # the same whole second
    assert dlas_fast.pack(dataset, out, shard_size="1GiB").written == 1
    assert untar_all(out, tmp_path / "untarred") == chunk_files(dataset)


def test_empty_chunks_and_duplicated_entries(dataset, tmp_path):
    (dataset / "aa_empty").mkdir()
    out = tmp_path / "shards"
    summary = dlas_fast.pack(dataset, out, shard_size="2MiB")
    assert all(s["members"] > 0 for s in manifest(out)["shards"])
    assert len(summary.shards) == len(manifest(out)["shards"])
    m = manifest(out)
    m["shards"].append(m["shards"][0])
    (out / "dlas_fast-pack.json").write_text(json.dumps(m))
    with pytest.raises(OSError, match="twice"):
        dlas_fast.create_dataset({**OPT, "mode": "single_image_extensible", "paths": str(out)})
