"""Faults in what gets opened and decoded: special files (a FIFO, a link to /dev/zero)
named like images, tiles, refs or centers.pt; PNGs whose metadata inflates to 2 GiB;
extraction options too large to allocate. Whatever could hang or run out of memory
runs in a subprocess with a timeout and a memory cap, so a
regression fails instead of hanging the suite."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import dlas_fast
import pytest
from conftest import gradient, save
from hostile import png_bomb, special_files

CLI = [sys.executable, "-m", "dlas_fast"]
#: Seconds any one subprocess may take; a hang ends here and fails the test.
TIMEOUT = 120
NOT_REGULAR = "not a regular file"


#: The address space every process of these tests gets beyond what it holds when it
#: starts its work: a 2 GiB inflation or an endless read of /dev/zero fails there
#: instead of taking the machine's memory.
HEADROOM = 1536 << 20


def run_cli(*args, program=CLI) -> subprocess.CompletedProcess:
    """The command line (or another `program`), its address space capped at HEADROOM."""

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (HEADROOM, HEADROOM))

    return subprocess.run(
        [*program, *map(str, args)], capture_output=True, text=True, timeout=TIMEOUT, preexec_fn=cap
    )


#: Loads every item of the dataset `json.loads(argv[1])` in a fresh process and prints
#: what happened as JSON. Once torch is loaded, the address space is capped at
#: HEADROOM (argv[2]) above its size then. Once the dataset is made, each file of
#: `json.loads(argv[3])` is replaced by a FIFO ("fifo") or a link to /dev/zero ("zero").
LOAD_ITEMS = r"""
import json, os, resource, sys, warnings
import torch
import dlas_fast

pages = int(open("/proc/self/statm").read().split()[0])
cap = pages * resource.getpagesize() + int(sys.argv[2])
resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
opt = json.loads(sys.argv[1])
ds = dlas_fast.create_dataset(opt)
for path, kind in json.loads(sys.argv[3]):
    os.unlink(path)
    os.mkfifo(path) if kind == "fifo" else os.symlink("/dev/zero", path)
out = {"len": len(ds), "items": [], "errors": []}
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    for i in range(len(ds)):
        try:
            item = ds[i]
            out["items"].append(str(item.get("GT_path") or item.get("HQ_path")))
        except Exception as e:
            out["errors"].append(f"{type(e).__name__}: {e}")
out["skipped"] = getattr(ds, "skipped_files", None)
print(json.dumps(out))
"""


def load_items(opt: dict, replace=()) -> dict:
    args = [sys.executable, "-c", LOAD_ITEMS, json.dumps(opt), str(HEADROOM), json.dumps(replace)]
    r = subprocess.run(args, capture_output=True, text=True, timeout=TIMEOUT)
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout.splitlines()[-1])


# ---- Special files: opened only if regular, refused by name --------------------------


def test_special_sources_are_failures_of_their_own(tmp_path):
    src = tmp_path / "src"
    save(gradient(600, 600, seed=1), src / "good.png")
    fifo, zero = special_files(src)
    r = run_cli("extract", src, tmp_path / "dst", "--threads", "2", "--no-progress-bar")
    assert r.returncode == 3, r.stdout + r.stderr
    for bad in (fifo, zero):
        assert f"FAILED: {bad}: " in r.stdout and NOT_REGULAR in r.stdout, r.stdout
    assert "1 extracted" in r.stdout and (tmp_path / "dst" / "good" / "ref.jpg").is_file()


def chunked(tmp_path: Path, names=("a", "b", "c")) -> Path:
    """A small chunked dataset: one chunk of 4 tiles per name."""
    src = tmp_path / "src"
    for i, name in enumerate(names):
        save(gradient(600, 600, seed=i), src / f"{name}.png")
    dst = tmp_path / "ds"
    dlas_fast.extract(src, dst, crop_sz=[256], step=[256], resize_final_img=[1], threads=2)
    return dst


def make_special(ds: Path, where: str) -> list[Path]:
    """Special files in chunk folders: as tiles, as ref.jpg or as centers.pt."""
    if where == "tiles":
        return special_files(ds / "a")
    name = {"ref": "ref.jpg", "centers": "centers.pt"}[where]
    (ds / "a" / name).unlink()
    (ds / "b" / name).unlink()
    fifo, _ = special_files(ds / "a", fifo=name, zero="unused")
    (ds / "a" / "unused").unlink()
    _, zero = special_files(ds / "b", fifo="unused", zero=name)
    (ds / "b" / "unused").unlink()
    return [fifo, zero]


@pytest.mark.parametrize("where", ["tiles", "ref", "centers"])
def test_verify_and_inspect_report_special_files(tmp_path, where):
    ds = chunked(tmp_path)
    bad = make_special(ds, where)
    r = run_cli("verify", ds, "--json", "-q", "--threads", "2")
    assert r.returncode == 3, r.stderr
    broken = {b["path"]: b["reason"] for b in json.loads(r.stdout)["broken"]}
    assert sorted(broken) == sorted(map(str, bad))
    assert all(NOT_REGULAR in reason for reason in broken.values()), broken
    r = run_cli("inspect", ds, "--json", "--threads", "2")
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    if where == "tiles":
        examples = report["unreadable_images"]["examples"]
        assert all(any(f"{p}: {NOT_REGULAR}" in e for e in examples) for p in bad), examples
    elif where == "centers":
        examples = report["unreadable_centers"]["examples"]
        assert len(examples) == 2 and all(NOT_REGULAR in e for e in examples), examples
    else:  # a ref that is not a regular file is no ref
        assert report["without_ref"]["count"] == 2


@pytest.mark.parametrize("where", ["tiles", "ref", "centers"])
def test_single_image_dataset_skips_or_names_special_files(tmp_path, where):
    ds = chunked(tmp_path)
    # centers.pt is read for strict datasets only.
    opt = {"mode": "single_image_extensible", "paths": str(ds), "need_ref": True,
           "strict": where == "centers", "random_seed": 1}  # fmt: skip
    replace = []
    if where == "ref":
        # A ref.jpg that is no regular file when the index is built is no ref (as a
        # missing one): here the refs become special files once the dataset is made.
        bad = [ds / "a" / "ref.jpg", ds / "b" / "ref.jpg"]
        replace = [[str(bad[0]), "fifo"], [str(bad[1]), "zero"]]
        refs = {p: p.read_bytes() for p in bad}
    else:
        bad = make_special(ds, where)
    got = load_items(opt, replace)
    assert not got["errors"] and len(got["items"]) == got["len"], got
    if where == "tiles":
        assert sorted(got["skipped"]) == sorted(map(str, bad))
    else:  # every item of chunks a and b is stood in for by one of chunk c
        assert all(Path(p).parent.name == "c" for p in got["items"]), got
        assert len(got["skipped"]) == 2, got
    if where == "ref":
        for path, content in refs.items():
            path.unlink()
            path.write_bytes(content)
    raised = load_items(dict(opt, on_error="raise"), replace)
    assert raised["errors"] and all(NOT_REGULAR in e for e in raised["errors"]), raised
    assert all(any(str(p) in e for e in raised["errors"]) for p in bad), raised


def image_folder(tmp_path: Path) -> tuple[Path, list[Path]]:
    root = tmp_path / "imgs" / "class0"
    for i in range(3):
        save(gradient(64, 48, seed=i), root / f"{i}.jpg", quality=95)
    return root.parent, special_files(root)


def test_image_folder_dataset_skips_or_names_special_files(tmp_path):
    root, bad = image_folder(tmp_path)
    opt = {"mode": "imagefolder", "paths": str(root), "target_size": 32, "scale": 1}
    got = load_items(opt)
    assert got["len"] == 5 and len(got["items"]) == 5 and not got["errors"]
    assert sorted(got["skipped"]) == sorted(map(str, bad))
    raised = load_items(dict(opt, on_error="raise"))
    assert len(raised["errors"]) == 2 and all(NOT_REGULAR in e for e in raised["errors"])


@pytest.mark.parametrize("transparent", [False, True])
def test_stylegan2_skips_or_names_special_files(tmp_path, transparent):
    root, bad = image_folder(tmp_path)
    opt = {"mode": "stylegan2", "path": str(root), "target_size": 32, "transparent": transparent}
    got = load_items(opt)
    assert got["len"] == 5 and len(got["items"]) == 5 and not got["errors"]
    assert sorted(got["skipped"]) == sorted(map(str, bad))
    raised = load_items(dict(opt, on_error="raise"))
    assert len(raised["errors"]) == 2 and all(NOT_REGULAR in e for e in raised["errors"])


def test_torch_dataset_image_folder_names_special_files(tmp_path):
    pytest.importorskip("torchvision")
    root, bad = image_folder(tmp_path)
    opt = {"mode": "torch_dataset", "dataset": "imagefolder", "image_size": 32,
           "kwargs": {"root": str(root)}}  # fmt: skip
    got = load_items(opt)
    assert got["len"] == 5 and len(got["items"]) == 3, got
    assert len(got["errors"]) == 2 and all(NOT_REGULAR in e for e in got["errors"]), got
    assert all(any(str(p) in e for e in got["errors"]) for p in bad)


def test_special_cache_files_are_rebuilt_not_read(tmp_path):
    ds = chunked(tmp_path)
    index_cache = ds / ".dlas_fast-index.bin"
    index_cache.unlink(missing_ok=True)
    os.mkfifo(index_cache)
    r = run_cli("inspect", ds, "--json")
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["tiles"] == 12 and report["cache"]["state"] == "missing", report
    got = load_items({"mode": "single_image_extensible", "paths": str(ds), "random_seed": 1})
    assert got["len"] == 12 and len(got["items"]) == 12 and not got["errors"], got

    root = tmp_path / "imgs"
    for i in range(3):
        save(gradient(64, 48, seed=i), root / f"{i}.png")
    (root / ".dlas_fast-folder").mkdir()
    os.symlink("/dev/zero", root / ".dlas_fast-folder" / "listing.bin")
    r = run_cli("inspect", root, "--json")
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["images"] == 3 and report["cache"]["state"] == "missing", report
    got = load_items({"mode": "imagefolder", "paths": str(root), "target_size": 32, "scale": 1})
    assert got["len"] == 3 and len(got["items"]) == 3 and not got["errors"], got


# ---- Decompression bombs in PNG metadata --------------------------------------------


@pytest.fixture(scope="module")
def bombs(tmp_path_factory) -> Path:
    """A folder with a good PNG and three 600x600 PNGs whose iCCP, zTXt or iTXt chunk
    inflates to 2 GiB."""
    src = tmp_path_factory.mktemp("bombs")
    save(gradient(600, 600), src / "good.png")
    for chunk in ("iCCP", "zTXt", "iTXt"):
        png_bomb(src / f"{chunk}.png", chunk.encode(), size=(600, 600))
    return src


def test_png_bombs_are_refused_by_extraction_verify_and_inspect_under_a_memory_cap(bombs, tmp_path):
    r = run_cli("extract", bombs, tmp_path / "dst", "--threads", "2", "-q")
    assert r.returncode == 3, r.stdout + r.stderr
    iccp = bombs / "iCCP.png"
    # The profile is refused at its memory limit; text chunks are never inflated, so
    # those images extract like any other.
    failed = [line for line in r.stdout.splitlines() if "FAILED:" in line]
    assert len(failed) == 1 and f"FAILED: {iccp}: " in failed[0], r.stdout
    assert "memory limit" in failed[0] and "metadata" in failed[0], failed[0]
    assert "3 extracted" in r.stdout, r.stdout
    r = run_cli("verify", bombs, "--json", "-q", "--threads", "2")
    assert r.returncode == 3, r.stderr
    assert [b["path"] for b in json.loads(r.stdout)["broken"]] == [str(iccp)]
    r = run_cli("inspect", bombs, "--json", "--threads", "2")
    assert r.returncode == 0, r.stderr
    # Sizes come from the headers, read within the same memory limit (the profile is
    # dropped there, unread).
    report = json.loads(r.stdout)
    assert report["images"] == 4 and report["unreadable_images"]["count"] == 0, report
    assert report["sizes"] == [{"width": 600, "height": 600, "count": 4}], report


@pytest.mark.parametrize("mode", ["imagefolder", "stylegan2"])
def test_png_bombs_are_skipped_by_the_datasets_under_a_memory_cap(bombs, mode):
    opt = {"mode": mode, "target_size": 32}
    opt.update({"paths": str(bombs), "scale": 1} if mode == "imagefolder" else {"path": str(bombs)})
    got = load_items(opt)
    assert got["len"] == 4 and len(got["items"]) == 4 and not got["errors"], got
    assert got["skipped"] == [str(bombs / "iCCP.png")]
    raised = load_items(dict(opt, on_error="raise"))
    assert len(raised["errors"]) == 1 and "iCCP.png" in raised["errors"][0], raised
    assert raised["errors"][0].startswith("DecodeError"), raised


# ---- Extraction options that no allocation could satisfy -----------------------------


@pytest.mark.parametrize(
    "args, option, allowed",
    [
        (["--crop-sz", "100000,512"], "crop_sz", "1..=14142"),
        (["--crop-sz", "256,1024", "--max-pixels", "1000000"], "crop_sz", "1..=1000"),
        (["--step", "0,256"], "step", ">= 1"),
        (["--step", "-1,256"], "--step", ">= 1"),
        (["--resize-final-img", "1e300,0.5"], "resize_final_img", "(0, 1]"),
        (["--resize-final-img", "1,1e-300"], "resize_final_img", "(0, 1]"),
        (["--max-pixels", "18446744073709551615"], "--max-pixels", "1..=4294967296"),
        (["--max-pixels", "0"], "--max-pixels", "1..=4294967296"),
        (["--compression-level", "300"], "--compression-level", "1..=100"),
        (["--compression-level", "0"], "--compression-level", "1..=100"),
        (["--threads", "100000"], "--threads", "1..=1024"),
        (["--thres-sz", "-5"], "--thres-sz", ">= 0"),
    ],
)
def test_oversized_extraction_options_are_refused_by_name(tmp_path, args, option, allowed):
    src = tmp_path / "src"
    save(gradient(600, 600), src / "a.png")
    dst = tmp_path / "dst"
    r = run_cli("extract", src, dst, "-q", *args)
    assert r.returncode == 2, r.stdout + r.stderr
    assert option in r.stderr and allowed in r.stderr, r.stderr
    assert not dst.exists()


#: Runs `dlas_fast.extract(argv[1], argv[2], **json.loads(argv[3]))`; prints the error.
EXTRACT = r"""
import json, sys
import dlas_fast

try:
    dlas_fast.extract(sys.argv[1], sys.argv[2], **json.loads(sys.argv[3]))
    print("no error")
except ValueError as e:
    print(f"ValueError: {e}")
"""


@pytest.mark.parametrize(
    "options, option, allowed",
    [
        ({"crop_sz": [100000, 512]}, "crop_sz", "1..=14142"),
        ({"max_pixels": 1 << 40}, "max_pixels", "1..=4294967296"),
        ({"threads": 100000}, "n_thread", "1..=1024"),
        ({"compression_level": 101}, "compression_level", "1..=100"),
    ],
)
def test_oversized_options_are_refused_by_the_python_api(tmp_path, options, option, allowed):
    src = tmp_path / "src"
    save(gradient(600, 600), src / "a.png")
    dst = tmp_path / "dst"
    r = run_cli(src, dst, json.dumps(options), program=[sys.executable, "-c", EXTRACT])
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.startswith("ValueError") and option in r.stdout and allowed in r.stdout
    assert not dst.exists()
