"""Extraction faults: a DST holding files we did not write (``--overwrite`` removes only
our own chunks), SRC and DST that overlap, file names at the file system's limit, a
source list that changed before ``--resume``, and Ctrl-C / SIGTERM during a run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import dlas_fast
import hostile
import pytest
from conftest import gradient, jpeg_bytes, save, tree_bytes

CLI = [sys.executable, "-m", "dlas_fast"]


def run_cli(*args, timeout=300, **kw):
    return subprocess.run(
        [*CLI, *map(str, args)], capture_output=True, text=True, timeout=timeout, **kw
    )


def chunk_dirs(dst: Path) -> list[str]:
    return sorted(p.name for p in dst.iterdir() if p.is_dir() and not p.name.startswith("."))


@pytest.fixture
def photos(tmp_path) -> Path:
    src = tmp_path / "S"
    for i in range(3):
        save(gradient(640 + 16 * i, 560, seed=i), src / f"img{i}.jpg", quality=92)
    return src


# ---- --overwrite removes only what this tool wrote ------------------------------------


def test_overwrite_keeps_a_users_folder_that_has_a_chunks_name(tmp_path):
    # mkdir -p S D/important; cp p.jpg S/important.jpg; echo t > D/important/thesis.tex
    src, dst = tmp_path / "S", tmp_path / "D"
    made = hostile.foreign_folder_at_chunk_name(src, dst)
    before = hostile.snapshot(dst)
    r = run_cli("extract", src, dst, "--overwrite")
    assert r.returncode == 2, r.stderr
    assert made["file"].read_text() == made["text"]
    assert "important" in r.stderr and "thesis.tex" in r.stderr
    assert "--overwrite" not in r.stderr  # never suggested for files we did not write
    assert "empty or new" in r.stderr
    assert hostile.snapshot(dst) == before  # nothing written, nothing removed
    with pytest.raises(dlas_fast.DestinationError, match="thesis.tex") as e:
        dlas_fast.extract(src, dst, overwrite=True)
    assert "overwrite" not in str(e.value).split(": ", 1)[1]  # (the path aside)
    assert hostile.snapshot(dst) == before


@pytest.mark.parametrize("mode", [[], ["--resume"], ["--overwrite"]])
def test_a_dst_of_files_we_did_not_write_is_refused_in_every_mode(photos, tmp_path, mode):
    dst = tmp_path / "D"
    dst.mkdir()
    (dst / "precious.txt").write_text("keep me")
    r = run_cli("extract", photos, dst, *mode)
    assert r.returncode == 2
    assert "precious.txt" in r.stderr and "--overwrite" not in r.stderr
    assert hostile.snapshot(dst) == {"precious.txt": b"keep me"}


def test_overwrite_refuses_anything_in_the_way_that_is_not_our_chunk(photos, tmp_path):
    dst = tmp_path / "D"
    assert run_cli("extract", photos, dst).returncode == 0
    ours = tree_bytes(dst)
    made = hostile.entries_in_the_way(dst, tmp_path / "outside")
    for name in made:
        save(gradient(600, 540, seed=len(name)), photos / f"{name}.jpg")
    before = hostile.snapshot(dst)
    outside = hostile.snapshot(tmp_path / "outside")
    r = run_cli("extract", photos, dst, "--overwrite")
    assert r.returncode == 2, r.stderr
    assert str(dst / "album") in r.stderr  # the first in the way, named
    assert "--overwrite" not in r.stderr
    # Decided before anything was written or removed: not even our own chunks were
    # replaced, and no new chunk was made.
    assert hostile.snapshot(dst) == before
    assert hostile.snapshot(tmp_path / "outside") == outside
    # Each of them alone is refused too, whatever its kind.
    for name, path in made.items():
        for other in made:
            if other != name:
                (photos / f"{other}.jpg").rename(tmp_path / f"{other}.jpg")
        r = run_cli("extract", photos, dst, "--overwrite")
        assert r.returncode == 2 and str(path) in r.stderr, (name, r.stderr)
        assert hostile.snapshot(dst) == before, name
        for other in made:
            if other != name:
                (tmp_path / f"{other}.jpg").rename(photos / f"{other}.jpg")
    assert {k: v for k, v in tree_bytes(dst).items() if k in ours} == ours


def test_overwrite_replaces_our_own_earlier_output(photos, tmp_path):
    dst = tmp_path / "D"
    assert run_cli("extract", photos, dst, "--compression-level", "80").returncode == 0
    r = run_cli("extract", photos, dst, "--overwrite")
    assert r.returncode == 0, r.stderr
    fresh = tmp_path / "fresh"
    dlas_fast.extract(photos, fresh)
    assert tree_bytes(dst) == tree_bytes(fresh)
    # and once more, the same job
    assert dlas_fast.extract(photos, dst, overwrite=True).sources_extracted == 3
    assert tree_bytes(dst) == tree_bytes(fresh)


def test_resume_does_not_keep_a_foreign_folder_with_a_chunks_name(photos, tmp_path):
    dst = tmp_path / "D"
    assert run_cli("extract", photos, dst).returncode == 0
    for f in (dst / "img1").iterdir():
        f.unlink()
    (dst / "img1").rmdir()
    (dst / "img1").mkdir()
    (dst / "img1" / "thesis.tex").write_text("mine")
    r = run_cli("extract", photos, dst, "--resume")
    assert r.returncode == 2, r.stdout + r.stderr
    assert str(dst / "img1") in r.stderr and "thesis.tex" in r.stderr
    assert (dst / "img1" / "thesis.tex").read_text() == "mine"


def test_temporaries_we_did_not_make_are_left_alone(photos, tmp_path):
    dst = tmp_path / "D"
    assert run_cli("extract", photos, dst).returncode == 0
    made = hostile.planted_temporaries(dst, tmp_path / "outside")
    outside = hostile.snapshot(made["outside"])
    for mode in ("--resume", "--overwrite"):
        r = run_cli("extract", photos, dst, mode)
        assert r.returncode == 0, r.stderr
        assert hostile.snapshot(made["outside"]) == outside  # nothing written through
        assert made["link"].is_symlink()
        assert (made["folder"] / "thesis.tex").read_text() == "not a tile"
        for f in made["file_links"]:
            f.unlink(missing_ok=True)
            f.symlink_to(made["outside"] / "victim.txt")


def limit_memory():
    """For a child process: 4 GiB of address space, so that a read that never ends fails
    instead of taking the machine's memory."""
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))


@pytest.mark.parametrize("kind", ["fifo", "link to /dev/zero"])
def test_our_files_planted_as_pipes_or_links_are_never_read(photos, tmp_path, kind):
    # A pipe would block the run forever; /dev/zero would be read until memory runs out.
    def plant(path: Path):
        path.unlink(missing_ok=True)
        if kind == "fifo":
            os.mkfifo(path)
        else:
            path.symlink_to("/dev/zero")

    def run(dst, *args):
        return run_cli("extract", photos, dst, "-q", *args, preexec_fn=limit_memory, timeout=60)

    done = tmp_path / "done"
    assert run(done).returncode == 0
    for name, mode, code in [
        (".dlas_fast-job-1of1.json", "--resume", 2),
        (".dlas_fast-lock-1of1", "--resume", 2),
        (".dlas_fast-sources-*", "--resume", 0),  # the same list: stored anew
        (".dlas_fast-lock-2of2", "--overwrite", 0),  # another shard's, not ours to judge
    ]:
        dst = tmp_path / f"D-{name.strip('.*')}"
        subprocess.run(["cp", "-a", str(done), str(dst)], check=True)
        path = next(dst.glob(name), dst / name)
        plant(path)
        if "2of2" in name:  # a stale temporary of that shard, whose lock is not ours
            (dst / ".dlas_fast-tmp-2of2-0-0").mkdir()
        r = run(dst, mode)
        assert r.returncode == code, (name, r.stdout + r.stderr)
        if code == 2:
            assert path.name in r.stderr and "not a regular file" in r.stderr, r.stderr
            assert "Traceback" not in r.stderr
        assert os.path.islink(path) or not path.is_file() or "sources" in name
        if "sources" in name:
            assert path.is_file() and not path.is_symlink()  # replaced by a list of ours
            (photos / "img1.jpg").rename(tmp_path / "img1.jpg")  # a changed list
            plant(path)
            r = run(dst, "--resume")
            (tmp_path / "img1.jpg").rename(photos / "img1.jpg")
            assert r.returncode == 2 and "1 removed" not in r.stderr, r.stderr
            assert "missing or damaged" in r.stderr
        if "2of2" in name:
            assert (dst / ".dlas_fast-tmp-2of2-0-0").is_dir()


def test_the_ray_report_is_never_written_through_a_planted_link_or_pipe(tmp_path):
    from dlas_fast.distributed import _merge

    dst = tmp_path / "D"
    dst.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("mine")
    partial = dst / ".dlas_fast-report-ray.json.partial"

    def on_alarm(*_):
        raise TimeoutError("blocked on a pipe")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    try:
        for plant in (lambda: partial.symlink_to(victim), lambda: os.mkfifo(partial)):
            plant()
            signal.alarm(10)
            summary = _merge([], str(dst), 0.0, 1)
            signal.alarm(0)
            assert victim.read_text() == "mine"
            assert summary.shards == 1 and not partial.exists()
            assert json.loads((dst / ".dlas_fast-report-ray.json").read_text())["shards"] == 1
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


# ---- SRC and DST must not overlap ----------------------------------------------------


def overlap_cases(tmp_path: Path):
    """(name, src, dst, root of everything to compare before/after)."""
    w = tmp_path / "W"
    save(gradient(640, 560, seed=1), w / "holiday.jpg")
    save(gradient(600, 540, seed=2), w / "holiday" / "IMG_0001.jpg")
    save(gradient(600, 540, seed=3), w / "holiday" / "IMG_0002.jpg")
    (tmp_path / "L").symlink_to(w, target_is_directory=True)
    (tmp_path / "D" / "photos").mkdir(parents=True)
    save(gradient(640, 560, seed=4), tmp_path / "D" / "photos" / "p.jpg")
    return [
        ("same", w, w),
        ("same through a link", tmp_path / "L", w),
        ("dst inside src", w, w / "out"),
        ("dst deep inside src, not yet made", w, w / "new" / "deeper"),
        ("dst inside src through a link", w, tmp_path / "L" / "out"),
        ("dst inside src with ..", w, tmp_path / "D" / ".." / "W" / "holiday"),
        ("src inside dst", tmp_path / "D" / "photos", tmp_path / "D"),
        ("src inside dst through a link", tmp_path / "L" / "holiday", tmp_path / "L"),
    ]


def test_overlapping_src_and_dst_are_refused_before_anything_is_touched(tmp_path):
    for name, src, dst in overlap_cases(tmp_path):
        before = hostile.snapshot(tmp_path)
        r = run_cli("extract", src, dst, "--overwrite")
        assert r.returncode == 2, (name, r.stderr)
        assert "SRC" in r.stderr and "choose a DST" in r.stderr, (name, r.stderr)
        for mode in ({}, {"resume": True}, {"overwrite": True}):
            with pytest.raises(dlas_fast.DestinationError, match="choose a DST"):
                dlas_fast.extract(src, dst, **mode)
        with pytest.raises(dlas_fast.DestinationError, match="choose a DST"):
            dlas_fast.extract(src, dst, shard="1/2")
        r = run_cli("extract", src, dst, "--shard", "2/2")
        assert r.returncode == 2, (name, r.stderr)
        assert hostile.snapshot(tmp_path) == before, name  # no lock, no manifest, no chunk


def test_overlap_through_a_bind_mount_is_refused(tmp_path):
    # The same folder under two paths that no link explains: compared as folders. (Run
    # in a user and mount namespace of its own, so that the mount is undone with it.)
    w, m = tmp_path / "W", tmp_path / "M"
    save(gradient(640, 560, seed=1), w / "holiday.jpg")
    save(gradient(600, 540, seed=2), w / "holiday" / "00000001.jpg")
    m.mkdir()
    before = hostile.snapshot(w)
    cases = [(w, m / "out"), (w, m / "holiday"), (m / "holiday", w), (w, m)]
    script = f"mount --bind {w} {m} || exit 9\n" + "".join(
        f"{sys.executable} -m dlas_fast extract {s} {d} --overwrite; echo exit=$?\n"
        for s, d in cases
    )
    r = subprocess.run(
        ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", script],
        capture_output=True,
        text=True,
        timeout=300,
    )
    codes = [line for line in r.stdout.split() if line.startswith("exit=")]
    assert codes == ["exit=2"] * len(cases), r.stdout + r.stderr
    assert r.stderr.count("SRC") >= len(cases) and r.stderr.count("choose a DST") == len(cases)
    assert hostile.snapshot(w) == before


def test_a_dst_that_is_not_a_folder_is_refused_by_name(photos, tmp_path):
    from dlas_fast.distributed import extract_ray

    file, dangling = tmp_path / "notes.txt", tmp_path / "link"
    file.write_text("mine")
    dangling.symlink_to(tmp_path / "nowhere")
    for dst in (file, dangling):
        r = run_cli("extract", photos, dst)
        assert r.returncode == 2 and "is not a folder" in r.stderr, r.stderr
        with pytest.raises(dlas_fast.DestinationError, match="is not a folder"):
            dlas_fast.extract(photos, dst)
        with pytest.raises(dlas_fast.DestinationError, match="is not a folder"):
            extract_ray(photos, dst, tasks=2, progress=False)
    assert file.read_text() == "mine" and not (tmp_path / "nowhere").exists()


def test_overlap_is_refused_on_the_ray_path_before_ray_starts(tmp_path):
    from dlas_fast.distributed import extract_ray

    for name, src, dst in overlap_cases(tmp_path):
        before = hostile.snapshot(tmp_path)
        with pytest.raises(dlas_fast.DestinationError, match="choose a DST"):
            extract_ray(src, dst, tasks=2, progress=False)
        assert hostile.snapshot(tmp_path) == before, name


# ---- names at the file system's limit -------------------------------------------------


def test_file_names_at_the_limit_are_extracted_and_resumed(tmp_path):
    src, dst = tmp_path / "S", tmp_path / "D"
    made = hostile.long_named_sources(src)
    r = run_cli("extract", src, dst, "--threads", "2")
    assert r.returncode == 3, r.stdout + r.stderr  # only the not-UTF-8 name fails
    names = set(chunk_dirs(dst))
    assert {"L" * 251, "T" * 250, "T" * 250 + "_2"} <= names
    report = json.loads(next(dst.glob(".dlas_fast-report-*.json")).read_text())
    # Reported with its bytes that are not UTF-8 replaced.
    assert [f["path"] for f in report["failed"]] == [f"{src}/{chr(0xFFFD) * 120}.jpg"]
    assert os.path.exists(made["not_utf8"])
    assert "name" in report["failed"][0]["reason"]
    assert not list(dst.glob(".dlas_fast-tmp-*"))
    before = tree_bytes(dst)
    r = run_cli("extract", src, dst, "--resume")
    assert r.returncode == 3, r.stdout + r.stderr
    assert "3 kept" in r.stdout and "1 failed" in r.stdout
    assert tree_bytes(dst) == before


def test_a_chunk_name_the_file_system_refuses_fails_that_source_only(tmp_path):
    src, dst = tmp_path / "S", tmp_path / "D"
    save(gradient(1200, 560, seed=1), src / ("V" * 251 + ".jpg"))  # _left: 256 bytes
    save(gradient(1200, 560, seed=2), src / ("W" * 250 + ".jpg"))  # _right: 256 bytes
    save(gradient(1200, 560, seed=3), src / "pair.jpg")
    r = run_cli("extract", src, dst, "--vertical-split")
    assert r.returncode == 3, r.stdout + r.stderr
    assert "2 failed" in r.stdout and "1 extracted" in r.stdout
    # A failed source leaves no chunk (not even the half whose name fits).
    assert chunk_dirs(dst) == ["pair_left", "pair_right"]
    before = tree_bytes(dst)
    r = run_cli("extract", src, dst, "--vertical-split", "--resume")
    assert r.returncode == 3, r.stdout + r.stderr
    assert "1 kept" in r.stdout and "2 failed" in r.stdout
    assert tree_bytes(dst) == before
    summary = dlas_fast.extract(src, dst, vertical_split=True, resume=True)
    assert sorted(len(Path(f.path).name) for f in summary.failed) == [254, 255]


# ---- --resume after the source list changed ------------------------------------------


def two_folder_source(tmp_path: Path) -> tuple[Path, Path]:
    src, dst = tmp_path / "S", tmp_path / "D"
    save(gradient(640, 560, seed=11), src / "b" / "x.jpg")
    save(gradient(660, 560, seed=12), src / "c" / "y.jpg")
    assert run_cli("extract", src, dst).returncode == 0
    return src, dst


def test_resume_refuses_a_source_list_that_grew(tmp_path):
    src, dst = two_folder_source(tmp_path)
    before = hostile.snapshot(dst)
    hostile.grow_source_list(src, "a/x.jpg")  # would take `x`; b/x.jpg would be `x_2`
    r = run_cli("extract", src, dst, "--resume")
    assert r.returncode == 2, r.stdout + r.stderr
    assert "a/x.jpg" in r.stderr and "1 added" in r.stderr
    assert "--overwrite" in r.stderr and "new" in r.stderr
    assert hostile.snapshot(dst) == before
    with pytest.raises(dlas_fast.DestinationError, match="a/x.jpg"):
        dlas_fast.extract(src, dst, resume=True)
    # --overwrite redoes the job from the new list: as a fresh run into a new DST.
    assert run_cli("extract", src, dst, "--overwrite").returncode == 0
    fresh = tmp_path / "fresh"
    dlas_fast.extract(src, fresh)
    assert tree_bytes(dst) == tree_bytes(fresh)
    assert run_cli("extract", src, dst, "--resume").returncode == 0


def test_resume_refuses_modified_and_removed_sources(tmp_path):
    src, dst = two_folder_source(tmp_path)
    save(gradient(700, 560, seed=13), src / "b" / "x.jpg")  # new content
    r = run_cli("extract", src, dst, "--resume")
    assert r.returncode == 2 and "b/x.jpg" in r.stderr and "modified" in r.stderr
    assert run_cli("extract", src, dst, "--overwrite").returncode == 0
    st = (src / "c" / "y.jpg").stat()
    os.utime(src / "c" / "y.jpg", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # touched
    r = run_cli("extract", src, dst, "--resume")
    assert r.returncode == 2 and "c/y.jpg" in r.stderr and "modified" in r.stderr
    assert run_cli("extract", src, dst, "--overwrite").returncode == 0
    (src / "c" / "y.jpg").unlink()
    r = run_cli("extract", src, dst, "--resume")
    assert r.returncode == 2 and "c/y.jpg" in r.stderr and "1 removed" in r.stderr


def test_overwrite_from_a_shrunken_list_leaves_no_chunk_of_a_removed_source(tmp_path):
    src, dst = two_folder_source(tmp_path)
    save(gradient(680, 560, seed=14), src / "d" / "z.jpg")
    assert run_cli("extract", src, dst, "--overwrite").returncode == 0
    (dst / "notes").mkdir()
    (dst / "notes" / "todo.txt").write_text("mine")
    (src / "c" / "y.jpg").unlink()  # removed
    (src / "d" / "z.jpg").rename(src / "d" / "w.jpg")  # renamed
    r = run_cli("extract", src, dst, "--resume")
    assert r.returncode == 2 and "2 removed" in r.stderr, r.stderr
    # The refusal's advice, followed: DST then holds what a run into a new folder writes.
    r = run_cli("extract", src, dst, "--overwrite")
    assert r.returncode == 0, r.stderr
    fresh = tmp_path / "fresh"
    dlas_fast.extract(src, fresh)
    assert chunk_dirs(dst) == ["notes", "w", "x"]
    assert (dst / "notes" / "todo.txt").read_text() == "mine"
    ours = {k: v for k, v in tree_bytes(dst).items() if not k.startswith("notes")}
    assert ours == tree_bytes(fresh)


def test_shards_of_one_job_must_see_one_source_list(tmp_path):
    src, dst = tmp_path / "S", tmp_path / "D"
    save(gradient(640, 560, seed=11), src / "b" / "x.jpg")
    save(gradient(660, 560, seed=12), src / "c" / "y.jpg")
    assert run_cli("extract", src, dst, "--shard", "1/2").returncode == 0
    hostile.grow_source_list(src, "a/x.jpg")
    for mode in ([], ["--resume"]):
        r = run_cli("extract", src, dst, "--shard", "2/2", *mode)
        assert r.returncode == 2 and "a/x.jpg" in r.stderr, r.stderr
    from dlas_fast.distributed import extract_ray

    with pytest.raises(dlas_fast.DestinationError, match="a/x.jpg"):
        extract_ray(src, dst, tasks=2, resume=True, progress=False)


# ---- Ctrl-C and SIGTERM --------------------------------------------------------------

#: Enough sources for a run of several seconds on one thread (about 40 ms a megapixel).
N_SLOW = 40


@pytest.fixture(scope="module")
def slow_corpus(tmp_path_factory) -> tuple[Path, dict[str, bytes]]:
    src = tmp_path_factory.mktemp("slow") / "S"
    photos = [jpeg_bytes(gradient(2000, 2000, seed=i), quality=95) for i in range(4)]
    src.mkdir()
    for i in range(N_SLOW):
        (src / f"p{i:02d}.jpg").write_bytes(photos[i % 4])
    ref = src.parent / "ref"
    dlas_fast.extract(src, ref, threads=2)
    return src, tree_bytes(ref)


def wait_for_chunks(dst: Path, proc: subprocess.Popen, n: int = 2) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if dst.exists() and len(chunk_dirs(dst)) >= n:
            return
        time.sleep(0.01)
    raise AssertionError(f"the run wrote fewer than {n} chunks (exit {proc.poll()})")


def finish_and_compare(src: Path, dst: Path, ref: dict[str, bytes]) -> None:
    done = chunk_dirs(dst)
    assert 2 <= len(done) < N_SLOW, "the signal should land mid-run"
    for name in done:  # nothing partial looks complete
        assert {"ref.jpg", "centers.pt"} <= {p.name for p in (dst / name).iterdir()}
    manifest = json.loads((dst / ".dlas_fast-job-1of1.json").read_text())
    assert manifest["state"] == "running"
    resumed = run_cli("extract", src, dst, "--resume", "--threads", "2")
    assert resumed.returncode == 0, resumed.stderr
    assert tree_bytes(dst) == ref
    assert not list(dst.glob(".dlas_fast-tmp-*"))


@pytest.mark.parametrize("signals", [[signal.SIGINT], [signal.SIGTERM], [signal.SIGINT] * 2])
def test_the_cli_stops_on_a_signal_and_resume_finishes(slow_corpus, tmp_path, signals):
    src, ref = slow_corpus
    dst = tmp_path / "D"
    proc = subprocess.Popen(
        [*CLI, "extract", str(src), str(dst), "--threads", "1", "--no-progress-bar"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for_chunks(dst, proc)
        sent = time.monotonic()
        for sig in signals:
            proc.send_signal(sig)
            time.sleep(0.05)
        out, err = proc.communicate(timeout=30)
        took = time.monotonic() - sent
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 130, err[-2000:]
    print(f"stopped {took:.2f} s after the signal")
    assert took < 1.0, took  # the documented promise: stopped within a second
    assert "interrupted: rerun with --resume to finish" in err
    assert "Traceback" not in err
    finish_and_compare(src, dst, ref)


def test_the_cli_puts_pythons_signal_handler_back(photos, tmp_path):
    # Under `python -m dlas_fast`, the run's handlers replace Python's for the run only.
    argv = ["dlas-fast", "extract", "-q", str(photos), str(tmp_path / "D")]
    code = textwrap.dedent(f"""
        import os, signal, time
        from dlas_fast._native import cli_main
        assert cli_main({argv!r}) == 0
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(5)
        except KeyboardInterrupt:
            print("KeyboardInterrupt")
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.stdout.splitlines()[-1:] == ["KeyboardInterrupt"], r.stdout + r.stderr


def test_the_python_api_raises_keyboard_interrupt_promptly(slow_corpus, tmp_path):
    src, ref = slow_corpus
    dst = tmp_path / "D"
    code = textwrap.dedent(f"""
        import signal, sys, time
        import dlas_fast
        try:
            dlas_fast.extract({str(src)!r}, {str(dst)!r}, threads=1)
        except KeyboardInterrupt:
            restored = signal.getsignal(signal.SIGINT) is signal.default_int_handler
            print("KeyboardInterrupt", restored, flush=True)
            sys.exit(7)
        print("finished", flush=True)
    """)
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        wait_for_chunks(dst, proc)
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
        took = time.monotonic() - sent
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 7, out + err
    assert out.split() == ["KeyboardInterrupt", "True"]
    assert took < 1.0, took  # the documented promise: stopped within a second
    finish_and_compare(src, dst, ref)
