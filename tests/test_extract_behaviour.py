"""Extraction behaviours: determinism, DST guard, resume after a kill, bad files, colour
modes, options."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dlas_fast
import numpy as np
import pytest
from conftest import gradient, jpeg_bytes, save, tree_bytes
from PIL import Image

CLI = [sys.executable, "-m", "dlas_fast"]


def run_cli(*args, **kw):
    return subprocess.run([*CLI, *map(str, args)], capture_output=True, text=True, **kw)


@pytest.fixture
def small_corpus(tmp_path) -> Path:
    src = tmp_path / "src"
    for i in range(4):
        save(gradient(700 + 40 * i, 600, seed=i), src / f"img{i}.png")
    save(gradient(1024, 1024, seed=9), src / "sub" / "deep.jpg", quality=90)
    return src


def test_output_identical_whatever_the_thread_count(small_corpus, tmp_path):
    a = dlas_fast.extract(small_corpus, tmp_path / "a", threads=1)
    b = dlas_fast.extract(small_corpus, tmp_path / "b", threads=2)
    c = dlas_fast.extract(small_corpus, tmp_path / "c", threads=7)
    assert a.tiles_written == b.tiles_written == c.tiles_written > 0
    ta = tree_bytes(tmp_path / "a")
    assert ta == tree_bytes(tmp_path / "b") == tree_bytes(tmp_path / "c")


def test_dst_guard_refuses_then_resume_and_overwrite(small_corpus, tmp_path):
    dst = tmp_path / "out"
    first = run_cli("extract", small_corpus, dst, "--threads", "2")
    assert first.returncode == 0, first.stderr
    before = tree_bytes(dst)
    again = run_cli("extract", small_corpus, dst)
    assert again.returncode == 2
    assert "already holds this job's output" in again.stderr
    resumed = dlas_fast.extract(small_corpus, dst, resume=True)
    assert resumed.sources_kept == 5 and resumed.tiles_written == 0
    over = dlas_fast.extract(small_corpus, dst, overwrite=True)
    assert over.sources_extracted == 5
    assert tree_bytes(dst) == before
    other = run_cli("extract", small_corpus, dst, "--compression-level", "80")
    assert other.returncode == 2 and "other options" in other.stderr


def test_foreign_nonempty_dst_refused(small_corpus, tmp_path):
    dst = tmp_path / "mine"
    dst.mkdir()
    (dst / "precious.txt").write_text("keep me")
    with pytest.raises(dlas_fast.DestinationError, match="not empty"):
        dlas_fast.extract(small_corpus, dst)
    assert (dst / "precious.txt").read_text() == "keep me"


def test_usage_errors_exit_2(tmp_path):
    assert run_cli("extract").returncode == 2
    r = run_cli("extract", tmp_path / "nope", tmp_path / "out")
    assert r.returncode == 2 and "nope" in r.stderr
    r = run_cli("extract", tmp_path, tmp_path / "o", "--step", "128")
    assert r.returncode == 2 and "step" in r.stderr
    with pytest.raises(ValueError, match="bogus"):
        dlas_fast.extract(tmp_path, tmp_path / "o2", bogus=1)


def test_the_python_api_speaks_python(small_corpus, tmp_path):
    with pytest.raises(ValueError, match="unexpected keyword argument 'crop_size'") as err:
        dlas_fast.extract(small_corpus, tmp_path / "o", crop_size=256)
    message = str(err.value)
    assert "did you mean 'crop_sz'?" in message and "threads" in message
    assert "unknown field" not in message and not (tmp_path / "o").exists()
    small = {"crop_sz": [64], "step": [64], "thres_sz": 16, "resize_final_img": [1]}
    dlas_fast.extract(small_corpus, tmp_path / "o", **small)
    with pytest.raises(dlas_fast.DestinationError) as err:
        dlas_fast.extract(small_corpus, tmp_path / "o", **small)
    message = str(err.value)
    assert "resume=True" in message and "--" not in message, message
    assert err.value.path and str(tmp_path / "o") in err.value.path


def test_the_python_api_reports_progress_to_a_callback(small_corpus, tmp_path, capfd):
    seen = []
    summary = dlas_fast.extract(small_corpus, tmp_path / "o", progress=seen.append, threads=1)
    assert len(seen) == summary.sources_seen > 1
    assert [d["done"] for d in seen] == list(range(1, len(seen) + 1))
    assert all(d["total"] == summary.sources_seen for d in seen)
    assert sum(d["tiles"] for d in seen) == summary.tiles_written
    assert {d["status"] for d in seen} <= {"extracted", "skipped", "failed", "kept"}
    assert capfd.readouterr().err == ""  # not a terminal: no bar

    def stop(done):
        raise RuntimeError("enough")

    with pytest.raises(RuntimeError, match="enough"):
        dlas_fast.extract(small_corpus, tmp_path / "p", progress=stop, threads=1)
    dlas_fast.extract(small_corpus, tmp_path / "p", resume=True, threads=1)
    assert tree_bytes(tmp_path / "o") == tree_bytes(tmp_path / "p")


def test_the_python_api_draws_a_bar_on_a_terminal(small_corpus, tmp_path):
    import pty

    master, slave = pty.openpty()
    code = (f"import dlas_fast; dlas_fast.extract({str(small_corpus)!r}, "
            f"{str(tmp_path / 'o')!r}, threads=1)")  # fmt: skip
    try:
        run = subprocess.run([sys.executable, "-c", code], stderr=slave, timeout=300)
    finally:
        os.close(slave)
    drawn = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # the terminal's other end is closed: all read
            break
        if not chunk:
            break
        drawn += chunk
    os.close(master)
    assert run.returncode == 0
    assert b"sources" in drawn and b"ETA" in drawn, drawn


def test_the_python_option_names_are_the_jobs(tmp_path):
    """extract()'s list of DLAS option names is the native job's own."""
    import re

    from dlas_fast import _extract, _native

    with pytest.raises(ValueError) as err:
        _native.extract(str(tmp_path), str(tmp_path / "o"), '{"zz": 1}', False, False, None)
    listed = re.findall(r"`(\w+)`", str(err.value).split("expected one of", 1)[1])
    assert sorted(listed) == sorted(_extract.OPTION_NAMES)


def test_resume_after_kill_matches_uninterrupted_run(tmp_path):
    src = tmp_path / "src"
    for i in range(24):
        save(gradient(1400, 1400, seed=i), src / f"p{i:02d}.png", compress_level=0)
    ref = tmp_path / "ref"
    assert dlas_fast.extract(src, ref, threads=1).sources_extracted == 24
    dst = tmp_path / "dst"
    proc = subprocess.Popen(
        [*CLI, "extract", str(src), str(dst), "--threads", "1", "-q"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 60
    while time.time() < deadline:
        done = [p for p in dst.glob("p*") if p.is_dir()] if dst.exists() else []
        if len(done) >= 3:
            break
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    finished = [p.name for p in dst.iterdir() if not p.name.startswith(".")]
    assert 3 <= len(finished) < 24, "the kill should land mid-run"
    for name in finished:  # no chunk that looks complete is partial
        assert (dst / name / "centers.pt").exists() and (dst / name / "ref.jpg").exists()
    refused = run_cli("extract", src, dst)
    assert refused.returncode == 2
    resumed = run_cli("extract", src, dst, "--resume", "--threads", "2")
    assert resumed.returncode == 0, resumed.stderr
    assert tree_bytes(dst) == tree_bytes(ref)
    assert not list(dst.glob(".dlas_fast-tmp-*"))


def test_bad_files_are_reported_and_the_run_goes_on(tmp_path):
    src = tmp_path / "src"
    good = gradient(800, 640, seed=1)
    save(good, src / "good.png")
    (src / "empty.jpg").write_bytes(b"")
    (src / "noise.jpg").write_bytes(np.random.default_rng(0).bytes(5000))
    whole = jpeg_bytes(gradient(900, 700, seed=2), quality=92)
    (src / "truncated.jpg").write_bytes(whole[: len(whole) // 2])
    (src / "text.png").write_text("not a png")
    (src / "notes.txt").write_text("ignored: not an image extension")
    (src / "dir.jpg").mkdir()
    dst = tmp_path / "out"
    r = run_cli("extract", src, dst)
    assert r.returncode == 3, r.stdout + r.stderr
    report = json.loads((dst / ".dlas_fast-report-1of1.json").read_text())
    failed = {Path(f["path"]).name: f["reason"] for f in report["failed"]}
    assert set(failed) == {"empty.jpg", "noise.jpg", "truncated.jpg", "text.png"}
    assert "empty" in failed["empty.jpg"]
    assert all(name in r.stdout for name in failed)
    assert (dst / "good" / "centers.pt").exists()
    assert not (dst / "truncated").exists()
    assert report["sources_extracted"] == 1


def test_too_small_sources_are_judged_from_the_header(tmp_path):
    # The size rule needs only the header: a small file is skipped by rule without
    # decoding its pixels, so even a damaged one is not a failure.
    src = tmp_path / "src"
    small = jpeg_bytes(gradient(600, 400, seed=3), quality=90)
    (src).mkdir()
    (src / "small_truncated.jpg").write_bytes(small[: len(small) // 2])
    save(gradient(600, 400, seed=4), src / "small.png")
    s = dlas_fast.extract(src, tmp_path / "out")
    assert s.failed == []
    assert sorted(Path(i.path).name for i in s.skipped) == ["small.png", "small_truncated.jpg"]
    assert all("smaller side 400" in i.reason for i in s.skipped)


def test_pixel_limit_refuses_bombs(tmp_path):
    src = tmp_path / "src"
    save(gradient(1000, 800), src / "big.png")
    s = dlas_fast.extract(src, tmp_path / "out", max_pixels=500_000)
    assert s.sources_extracted == 0
    assert "pixel limit" in s.failed[0].reason and "big.png" in s.failed[0].reason


def test_grey_rgba_cmyk_16bit_palette_progressive_sources(tmp_path):
    src = tmp_path / "src"
    rgb = gradient(600, 520, seed=3)
    save(Image.fromarray(rgb).convert("L"), src / "grey.png")
    save(Image.fromarray(rgb).convert("L"), src / "grey.jpg", quality=90)
    rgba = np.dstack([rgb, np.full(rgb.shape[:2], 7, np.uint8)])
    save(Image.fromarray(rgba), src / "rgba.png")
    save(Image.fromarray(rgb).convert("CMYK"), src / "cmyk.jpg", quality=90)
    save(Image.fromarray(rgb[..., 0].astype(np.uint16) * 257), src / "deep16.png")
    save(Image.fromarray(rgb).convert("P"), src / "palette.png")
    save(rgb, src / "progressive.jpg", quality=90, progressive=True)
    save(rgb, src / "lossless.webp", lossless=True)
    save(rgb, src / "plain.bmp")
    save(rgb, src / "plain.ppm")
    s = dlas_fast.extract(src, tmp_path / "out")
    assert s.failed == [], s.failed
    assert s.sources_extracted == 10
    for chunk in ("grey", "rgba", "cmyk", "palette", "progressive", "plain", "plain_2"):
        tile = np.asarray(Image.open(tmp_path / "out" / chunk / "00000001.jpg"))
        assert tile.shape == (256, 256, 3), chunk
    # colours survive: the RGBA source's tile is the RGB gradient, not the alpha.
    a = np.asarray(Image.open(tmp_path / "out" / "rgba" / "00000001.jpg"), dtype=float)
    b = np.asarray(Image.open(tmp_path / "out" / "progressive" / "00000001.jpg"), dtype=float)
    assert abs(a.mean() - b.mean()) < 2
    g = np.asarray(Image.open(tmp_path / "out" / "grey" / "00000001.jpg"), dtype=float)
    assert np.abs(g[..., 0] - g[..., 2]).mean() < 2  # grey stays grey


def test_vertical_split_exclusions_and_masks(tmp_path):
    src = tmp_path / "src"
    save(gradient(1600, 700, seed=4), src / "stereo.png")
    s = dlas_fast.extract(src, tmp_path / "split", vertical_split=True)
    assert s.chunks_written == 2
    for half in ("stereo_left", "stereo_right"):
        with Image.open(tmp_path / "split" / half / "ref.jpg") as ref:
            assert ref.size == (256, 256)
    dlas_fast.extract(src, tmp_path / "ex", exclusions=[["stereo"], []])
    centers = dlas_fast.read_centers(tmp_path / "ex" / "stereo" / "centers.pt")
    assert {w for (_, w) in centers.values()} == {int(512 // (700 / 256))}
    masks = tmp_path / "masks"
    mask = np.zeros((700, 700), np.uint8)
    mask[:, :350] = 255  # left half of the square is wanted
    save(mask, masks / "stereo.png.png")
    dlas_fast.extract(
        src,
        tmp_path / "m",
        mask_path=masks,
        crop_sz=[256],
        step=[128],
        resize_final_img=[1],
        exclusions=[[]],
    )
    cols = {
        c
        for ((_, c), _) in dlas_fast.read_centers(tmp_path / "m" / "stereo" / "centers.pt").values()
    }
    assert cols and max(cols) < 128  # only tiles over the white half were kept
    missing = dlas_fast.extract(src, tmp_path / "m2", mask_path=tmp_path / "nomasks")
    assert "mask" in missing.failed[0].reason


def test_cli_prints_summary_and_plain_progress(small_corpus, tmp_path):
    r = run_cli("extract", small_corpus, tmp_path / "o", "--threads", "2")
    assert r.returncode == 0
    assert "5 seen, 5 extracted" in r.stdout and "MP/s" in r.stdout
    assert "[5/5]" in r.stderr and "ETA" in r.stderr


def test_extract_does_not_import_torch():
    code = "import dlas_fast, sys; assert 'torch' not in sys.modules"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_the_command_starts_light_and_the_lazy_names_resolve():
    # What `dlas-fast extract` imports before running: no torch, not the slow
    # importlib.metadata, not even dataclasses or json (its start-up time counts).
    slow = {"torch", "importlib.metadata", "numpy", "dataclasses", "json", "inspect"}
    code = (
        "import sys; from dlas_fast.__main__ import main; "
        f"loaded = {sorted(slow)!r}; "
        "assert not set(loaded) & set(sys.modules), sorted(set(loaded) & set(sys.modules))"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    # The function `extract` stays the package attribute whatever imports its module.
    import dlas_fast.distributed  # noqa: F401  (imports the dlas_fast._extract module)

    module = sys.modules["dlas_fast._extract"]
    assert callable(dlas_fast.extract) and dlas_fast.extract is module.extract
    for name in dlas_fast.__all__:
        assert getattr(dlas_fast, name) is not None, name
    assert dlas_fast.__version__


def test_two_runs_of_one_job_into_one_dst_never_interleave(small_corpus, tmp_path):
    # Started together: whichever order they run in, one extracts and the other is
    # refused (by the lock while the first writes, or by the finished job's manifest),
    # and DST ends as one uninterrupted run leaves it.
    dst = tmp_path / "out"
    procs = [subprocess.Popen([*CLI, "extract", str(small_corpus), str(dst), "--threads", "1"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]  # fmt: skip
    outputs = [p.communicate(timeout=300) for p in procs]  # reads and closes the pipes
    codes = sorted(p.returncode for p in procs)
    assert codes == [0, 2], outputs
    alone = tmp_path / "alone"
    dlas_fast.extract(small_corpus, alone, threads=1)
    assert tree_bytes(dst) == tree_bytes(alone)


def test_a_held_lock_refuses_the_run(small_corpus, tmp_path):
    import fcntl

    dst = tmp_path / "out"
    dst.mkdir()
    with open(dst / ".dlas_fast-lock-1of1", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        r = run_cli("extract", small_corpus, dst)
        assert r.returncode == 2 and "another extraction" in r.stderr + r.stdout
    assert run_cli("extract", small_corpus, dst).returncode == 0  # released: it runs
