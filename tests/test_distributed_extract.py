"""Extraction beyond one machine: ``--shard K/N`` runs that together write
exactly one run's chunks, one lock per shard, and extraction as Ray tasks on a real
local Ray instance (retried when a worker dies)."""

from __future__ import annotations

import fcntl
import json
import subprocess
import sys
import threading
from pathlib import Path

import dlas_fast
import pytest
from conftest import gradient, save, tree_bytes

CLI = [sys.executable, "-m", "dlas_fast"]


def run_cli(*args):
    return subprocess.run([*CLI, *map(str, args)], capture_output=True, text=True)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    src = tmp_path_factory.mktemp("shard_src")
    for i in range(7):
        save(gradient(560 + 24 * i, 520, seed=30 + i), src / f"img{i}.png")
    # Two sources with one stem in two folders: chunk names `twin` and `twin_2`,
    # decided on the whole sorted list, so shards never collide.
    save(gradient(600, 540, seed=50), src / "a" / "twin.jpg", quality=92)
    save(gradient(620, 540, seed=51), src / "b" / "twin.jpg", quality=92)
    (src / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    return src


@pytest.fixture(scope="module")
def whole(corpus, tmp_path_factory) -> dict[str, bytes]:
    dst = tmp_path_factory.mktemp("shard_whole") / "ds"
    summary = dlas_fast.extract(corpus, dst, threads=2)
    assert summary.sources_extracted == 9 and len(summary.failed) == 1
    return tree_bytes(dst)


def test_shards_one_after_another_give_one_runs_files(corpus, whole, tmp_path):
    dst = tmp_path / "ds"
    seen = []
    for k in (3, 1, 2):
        s = dlas_fast.extract(corpus, dst, shard=f"{k}/3", threads=1)
        seen.append(s.sources_seen)
    assert sum(seen) == 10 and max(seen) - min(seen) <= 1  # round-robin positions
    assert tree_bytes(dst) == whole
    assert {p.name for p in dst.iterdir() if p.name.startswith("twin")} == {"twin", "twin_2"}
    # A second run of a finished shard is refused; another shard count of the same job
    # is a different shard.
    with pytest.raises(dlas_fast.DestinationError, match="already holds this job's output"):
        dlas_fast.extract(corpus, dst, shard=(2, 3))


def test_shards_side_by_side_give_one_runs_files(corpus, whole, tmp_path):
    dst = tmp_path / "ds"
    errors = []

    def shard(k):
        try:
            dlas_fast.extract(corpus, dst, shard=(k, 4), threads=1)
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=shard, args=(k,)) for k in range(1, 5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert tree_bytes(dst) == whole


def test_the_lock_is_per_shard(corpus, tmp_path):
    dst = tmp_path / "ds"
    dst.mkdir()
    with open(dst / ".dlas_fast-lock-2of2", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        r = run_cli("extract", corpus, dst, "--shard", "2/2", "--threads", "1")
        assert r.returncode == 2 and "shard 2/2" in r.stderr
        # Another shard of the job runs meanwhile.
        r = run_cli("extract", corpus, dst, "--shard", "1/2", "--threads", "1")
        assert r.returncode == 3, r.stderr  # finished; broken.jpg is in shard 1
        assert "broken.jpg" in r.stdout
    r = run_cli("extract", corpus, dst, "--shard", "2/2", "--threads", "1")
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("bad", ["0/3", "4/3", "2", "a/b"])
def test_a_bad_shard_is_a_usage_error(corpus, tmp_path, bad):
    r = run_cli("extract", corpus, tmp_path / "ds", "--shard", bad)
    assert r.returncode == 2 and "shard" in r.stderr
    with pytest.raises(ValueError, match="shard"):
        dlas_fast.extract(corpus, tmp_path / "ds2", shard=bad)


# --- Ray -----------------------------------------------------------------------------

# A dev requirement (scripts/requirements-dev.txt): a missing ray fails here, never skips.
import ray  # noqa: E402


@pytest.fixture(scope="module")
def ray_local(tmp_path_factory):
    """A local Ray instance with the machine's cores; its workers crash once per shard
    while the returned folder exists (see dlas_fast.distributed)."""
    import os

    from dlas_fast.distributed import _CRASH_ONCE_ENV

    crash = tmp_path_factory.mktemp("ray_crash") / "on"
    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {_CRASH_ONCE_ENV: str(crash)}})  # fmt: skip
    yield crash
    ray.shutdown()


def test_ray_extraction_gives_one_runs_files(ray_local, corpus, whole, tmp_path):
    from dlas_fast.distributed import extract_ray

    dst = tmp_path / "ds"
    summary = extract_ray(corpus, dst, tasks=3, progress=False)
    assert tree_bytes(dst) == whole
    assert (summary.sources_seen, summary.sources_extracted) == (10, 9)
    assert [f.path for f in summary.failed] == [str(corpus / "broken.jpg")]
    report = json.loads(Path(summary.report_path).read_text())
    assert report["tiles_written"] == summary.tiles_written > 0
    # The job's DST rules hold for the whole job: a fresh run is refused.
    with pytest.raises(dlas_fast.DestinationError, match="already holds"):
        extract_ray(corpus, dst, tasks=3, progress=False)
    again = extract_ray(corpus, dst, tasks=3, progress=False, resume=True)
    assert again.sources_kept == 9 and tree_bytes(dst) == whole


def test_a_task_whose_worker_dies_is_retried(ray_local, corpus, whole, tmp_path):
    from dlas_fast.distributed import extract_ray

    ray_local.mkdir()
    try:
        dst = tmp_path / "ds"
        summary = extract_ray(corpus, dst, tasks=2, progress=False, max_retries=2)
    finally:
        crashed = sorted(p.name for p in ray_local.iterdir())
        for p in ray_local.iterdir():
            p.unlink()
        ray_local.rmdir()
    # Both first attempts died after writing; the retries resumed and kept their work.
    assert crashed == ["crashed-1of2", "crashed-2of2"]
    assert summary.sources_kept == 9 and summary.sources_extracted == 0
    assert tree_bytes(dst) == whole


def test_a_task_that_keeps_failing_fails_the_call(ray_local, corpus, tmp_path):
    from dlas_fast.distributed import extract_ray

    ray_local.mkdir()
    try:
        with pytest.raises(ray.exceptions.RayError):
            extract_ray(corpus, tmp_path / "ds", tasks=1, progress=False, max_retries=0)
    finally:
        for p in ray_local.iterdir():
            p.unlink()
        ray_local.rmdir()


def test_ray_cli_flag(ray_local, corpus, whole, tmp_path):
    dst = tmp_path / "ds"
    r = run_cli("extract", corpus, dst, "--ray", "--ray-tasks", "2", "--threads", "1")
    assert r.returncode == 3, r.stderr  # finished, one source undecodable
    assert "broken.jpg" in r.stdout and "2 shards" in r.stdout
    assert tree_bytes(dst) == whole


def test_shards_of_another_count_are_refused_and_stale_temporaries_removed(corpus, tmp_path):
    dst = tmp_path / "ds"
    dlas_fast.extract(corpus, dst, shard="1/2", threads=1)
    with pytest.raises(dlas_fast.DestinationError, match=r"cut into 2 shards.*shard=K/2"):
        dlas_fast.extract(corpus, dst, shard="1/4", threads=1)
    # A killed run of another shard left a half-built chunk; the next run of any shard
    # removes it once nobody holds that shard's lock.
    (dst / ".dlas_fast-tmp-2of2-img3").mkdir()
    (dst / ".dlas_fast-tmp-2of2-img3" / "00000001.jpg").write_bytes(b"half")
    with open(dst / ".dlas_fast-lock-2of2", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        dlas_fast.extract(corpus, dst, shard="1/2", threads=1, resume=True)
        assert (dst / ".dlas_fast-tmp-2of2-img3").exists()  # shard 2 is running
    dlas_fast.extract(corpus, dst, shard="1/2", threads=1, resume=True)
    assert not (dst / ".dlas_fast-tmp-2of2-img3").exists()


def test_ray_options_are_checked_and_a_resume_keeps_the_shard_count(ray_local, corpus, tmp_path):
    from dlas_fast.distributed import extract_ray

    with pytest.raises(ValueError, match="threads_per_task"):
        extract_ray(corpus, tmp_path / "x", threads=2, progress=False)
    with pytest.raises(ValueError, match="more than any node's CPUs"):
        extract_ray(corpus, tmp_path / "x", threads_per_task=999, progress=False)
    dst = tmp_path / "ds"
    first = extract_ray(corpus, dst, tasks=3, progress=False)
    again = extract_ray(corpus, dst, progress=False, resume=True)  # no tasks given
    assert (first.shards, again.shards) == (3, 3)
    assert sorted(p.name for p in dst.glob(".dlas_fast-job-*")) == [
        f".dlas_fast-job-{k}of3.json" for k in (1, 2, 3)
    ]


@pytest.mark.parametrize("how", ["sigint", "sigterm"])
def test_the_ray_command_stops_on_a_signal_with_the_resume_hint(corpus, tmp_path, how, capsys):
    import os
    import signal
    import time

    from dlas_fast import distributed

    def interrupted_run(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGINT if how == "sigint" else signal.SIGTERM)
        time.sleep(5)  # the signal arrives first
        raise AssertionError("not interrupted")

    before = signal.getsignal(signal.SIGTERM)
    real = distributed.extract_ray
    distributed.extract_ray = interrupted_run
    try:
        code = distributed.main(["dlas-fast", "extract", str(corpus), str(tmp_path / "o"), "--ray"])
    finally:
        distributed.extract_ray = real
    assert code == 130
    err = capsys.readouterr().err
    assert "interrupted: rerun with --resume to finish" in err and "Traceback" not in err
    assert signal.getsignal(signal.SIGTERM) is before  # put back
