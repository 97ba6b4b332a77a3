"""Exact mid-epoch resume: ``loader.state_dict()`` / ``load_state_dict(state)``.

Runs shaped like DLAS's training loop (tests/resume_child.py) are killed with SIGKILL
after a chosen batch, in gloo groups of 1-3 ranks; new processes with other worker
counts and start methods load each rank's saved state and must hand out, batch for
batch, exactly what the uninterrupted run handed out next (every tensor and path,
compared by digest).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import dlas_fast
import pytest
import torch
from dlas_fast.samplers import DistIterSampler, ResumableSampler

CHILD = Path(__file__).with_name("resume_child.py")

OPT = {
    "mode": "single_image_extensible",
    "target_size": 64,
    "scale": 2,
    "fixed_corruptions": ["jpeg-broad", "gaussian_blur"],
    "random_corruptions": ["noise-5", "color_jitter", "none"],
    "num_corrupts_per_image": 1,
}


@pytest.fixture(scope="module")
def tiles(golden_sources, tmp_path_factory) -> Path:
    """A chunked dataset of 29 tiles (two of the golden sources)."""
    src = tmp_path_factory.mktemp("resume_src")
    for name in ("small_600x500.png", "tall_777x1300.png"):
        shutil.copy(golden_sources / name, src / name)
    dst = tmp_path_factory.mktemp("resume") / "ds"
    summary = dlas_fast.extract(src, dst, threads=2)
    assert summary.tiles_written == 29
    return dst


def launch(tmp: Path, name: str, world: int, base: dict) -> list[subprocess.Popen]:
    """`world` ranks of resume_child.py in one gloo group."""
    rendezvous = tmp / f"{name}.rendezvous"
    procs = []
    for rank in range(world):
        out = tmp / f"{name}.r{rank}"
        cfg = dict(base, rank=rank, world=world, init=f"file://{rendezvous}", out=str(out),
                   state=f"{out}.state")  # fmt: skip
        procs.append(
            subprocess.Popen(
                [sys.executable, str(CHILD), json.dumps(cfg)],
                env=dict(os.environ, OMP_NUM_THREADS="1"),
            )
        )
    return procs


def wait(procs: list[subprocess.Popen], killed: bool) -> None:
    codes = [p.wait(timeout=600) for p in procs]
    assert codes == [-signal.SIGKILL if killed else 0] * len(procs), codes


def read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def digests(path: Path) -> list[str]:
    return [r["digest"] for r in read(path)]


# (world size, sampler): DistributedSampler, DLAS's DistIterSampler, and
# create_dataloader's own keyed shuffle, in gloo groups of 1-3 ranks.
WORLDS = [(1, "torch"), (2, "dlas"), (3, "torch"), (1, "none")]
# Where the first runs are killed, as (workers, start method).
KILLED_WITH = [(2, "fork"), (1, "spawn"), (0, "fork")]
# The new processes that resume each of those: 3 worker counts x 2 start methods,
# persistent workers or not.
RESUMED_WITH = [(0, "fork", False), (0, "spawn", False), (1, "fork", False), (1, "spawn", True),
                (2, "fork", True), (2, "spawn", False)]  # fmt: skip


@pytest.mark.parametrize("world,sampler", WORLDS)
def test_killed_runs_resume_bit_identical(tiles, tmp_path, world, sampler):
    opt = dict(OPT, paths=str(tiles), random_seed=21, batch_size=2 * world)
    base = {"opt": opt, "sampler": sampler, "epochs": 2}
    # The uninterrupted run.
    wait(launch(tmp_path, "ref", world, dict(base, workers=0, start="fork", kill_at=None)), False)
    ref = [digests(tmp_path / f"ref.r{r}") for r in range(world)]
    per_epoch = len(ref[0]) // 2
    assert per_epoch >= 3 and all(len(r) == 2 * per_epoch for r in ref)
    assert len(set(ref[0])) == len(ref[0])  # every batch differs (epochs too)
    # Killed after the first batch, the last batch of epoch 0, and mid-epoch 1.
    points = [0, per_epoch - 1, per_epoch + 1]
    for point, (workers, start) in zip(points, KILLED_WITH):
        name = f"kill{point}"
        cfg = dict(base, workers=workers, start=start, kill_at=point)
        wait(launch(tmp_path, name, world, cfg), True)
        for r in range(world):
            # What it handed out before it died is the uninterrupted run's.
            assert digests(tmp_path / f"{name}.r{r}") == ref[r][: point + 1]
            state = json.loads((tmp_path / f"{name}.r{r}.state").read_text())
            assert state["iter"] == point and len(json.dumps(state)) < 600
    for workers, start, persistent in RESUMED_WITH:
        name = f"resume{workers}{start}"
        cfg = dict(base, workers=workers, start=start, persistent=persistent,
                   resume=[str(tmp_path / f"kill{p}.r{{rank}}.state") for p in points])  # fmt: skip
        procs = []
        for rank in range(world):
            mine = dict(cfg, resume=[p.replace("{rank}", str(rank)) for p in cfg["resume"]])
            procs += launch_one(tmp_path, name, world, rank, mine)
        wait(procs, False)
        for r in range(world):
            for i, point in enumerate(points):
                got = read(tmp_path / f"{name}.r{r}.{i}")
                assert [g["digest"] for g in got] == ref[r][point + 1 :], (workers, start, point)
                # The loop's own counters carried on too.
                assert [g["step"] for g in got] == list(range(point + 1, 2 * per_epoch))


def launch_one(tmp: Path, name: str, world: int, rank: int, cfg: dict) -> list:
    rendezvous = tmp / f"{name}.rendezvous"
    cfg = dict(cfg, rank=rank, world=world, init=f"file://{rendezvous}",
               out=str(tmp / f"{name}.r{rank}"))  # fmt: skip
    return [
        subprocess.Popen(
            [sys.executable, str(CHILD), json.dumps(cfg)],
            env=dict(os.environ, OMP_NUM_THREADS="1"),
        )
    ]


def test_an_unseeded_run_resumes_with_its_drawn_seed(tiles, tmp_path):
    # No random_seed: rank 0 draws one for the group; the resumed group draws another,
    # and the saved state puts the first back.
    opt = dict(OPT, paths=str(tiles), batch_size=4)
    base = {"opt": opt, "sampler": "torch", "epochs": 2}
    wait(launch(tmp_path, "kill", 2, dict(base, workers=1, start="fork", kill_at=4)), True)
    states = [json.loads((tmp_path / f"kill.r{r}.state").read_text()) for r in range(2)]
    seed = states[0]["loader"]["random_seed"]
    assert isinstance(seed, int) and states[1]["loader"]["random_seed"] == seed
    resume = dict(base, workers=2, start="spawn", resume=None)
    procs = []
    for rank in range(2):
        saved = [str(tmp_path / f"kill.r{rank}.state")]
        procs += launch_one(tmp_path, "resume", 2, rank, dict(resume, resume=saved))
    wait(procs, False)
    # The uninterrupted run, given the drawn seed.
    ref = dict(base, opt=dict(opt, random_seed=seed), workers=0, start="fork", kill_at=None)
    wait(launch(tmp_path, "ref", 2, ref), False)
    for r in range(2):
        full = digests(tmp_path / f"ref.r{r}")
        assert digests(tmp_path / f"kill.r{r}") == full[:5]
        assert digests(tmp_path / f"resume.r{r}.0") == full[5:]


# In one process: what the state holds and what load_state_dict refuses.


def make(tiles, **kw):
    opt = {**OPT, "paths": str(tiles), "batch_size": 4, "random_seed": 3, **kw}
    ds = dlas_fast.create_dataset(opt)
    return ds, dlas_fast.create_dataloader(ds, opt)


def keys(batch) -> tuple:
    return tuple(batch["GT_path"]), batch["lq"].sum().item(), batch["hq"].sum().item()


def test_the_state_is_small_plain_data_and_round_trips(tiles):
    ds, loader = make(tiles)
    assert loader.state_dict()["epoch"] == 0 and loader.state_dict()["batches"] == 0
    it = iter(loader)
    for _ in range(3):
        next(it)
    state = loader.state_dict()
    assert json.loads(json.dumps(state)) == state
    assert state["epoch"] == 0 and state["batches"] == 3 and state["random_seed"] == 3
    assert state["items"] == len(ds) and state["batch_size"] == 4
    assert state["sampler"]["type"] == "ResumableSampler"
    # A state loaded and not yet used is what state_dict gives back.
    _, other = make(tiles)
    other.load_state_dict(state)
    assert other.state_dict() == state
    # The rest of the epoch, then the next.
    rest = [keys(b) for b in it] + [keys(b) for b in loader]
    assert [keys(b) for b in other] + [keys(b) for b in other] == rest


def test_a_finished_epoch_resumes_at_the_next(tiles):
    _, loader = make(tiles)
    first = [keys(b) for b in loader]
    done = loader.state_dict()
    assert done["epoch"] == 0 and done["batches"] == len(first) == len(loader)
    second = [keys(b) for b in loader]
    _, other = make(tiles)
    other.load_state_dict(done)
    assert list(other) == []  # epoch 0 is over: nothing more of it
    assert [keys(b) for b in other] == second
    assert second != first


def test_same_options_same_batches_in_any_process(tiles):
    # The shuffle is keyed on the seed and the epoch: two loaders agree, epoch by epoch.
    _, a = make(tiles)
    _, b = make(tiles)
    for _ in range(2):
        assert [keys(x) for x in a] == [keys(x) for x in b]
    _, c = make(tiles, random_seed=4)
    assert [keys(x) for x in c] != [keys(x) for x in make(tiles)[1]]


def test_load_state_dict_names_what_differs(tiles):
    ds, loader = make(tiles)
    state = loader.state_dict()
    _, other = make(tiles, random_seed=9)
    with pytest.raises(ValueError, match="random_seed=3.*random_seed=9"):
        other.load_state_dict(state)
    ds2 = dlas_fast.create_dataset(dict(OPT, paths=str(tiles), random_seed=3))
    wrong = dlas_fast.create_dataloader(ds2, {"batch_size": 2})
    with pytest.raises(ValueError, match="batch_size=4.*batch_size=2"):
        wrong.load_state_dict(state)
    halves = ResumableSampler(ds2, num_replicas=2)
    sampled = dlas_fast.create_dataloader(ds2, {"batch_size": 4}, sampler=halves)
    with pytest.raises(ValueError, match="sampler"):
        sampled.load_state_dict(state)
    for bad in ({**state, "batches": 99}, {**state, "epoch": -1}, {**state, "format": "x"}, []):
        with pytest.raises(ValueError, match="load_state_dict"):
            loader.load_state_dict(bad)


def test_a_plain_dataloader_resumes_with_set_epoch_and_skip(tiles):
    ds, loader = make(tiles)
    whole = [[keys(b) for b in loader] for _ in range(2)]
    # The same batches from a plain DataLoader over the same sampler...
    plain_ds = dlas_fast.create_dataset(dict(OPT, paths=str(tiles), random_seed=3))
    sampler = ResumableSampler(plain_ds)
    plain = torch.utils.data.DataLoader(plain_ds, batch_size=4, sampler=sampler, drop_last=True)
    for epoch in range(2):
        sampler.set_epoch(epoch)  # sets the dataset's epoch too
        assert [keys(b) for b in plain] == whole[epoch]
    # ...and resumed after 2 batches of epoch 1 with the two calls of the docs.
    plain_ds.set_epoch(1)
    sampler.set_epoch(1, skip=2 * 4)
    assert [keys(b) for b in plain] == whole[1][2:]
    with pytest.raises(ValueError, match="skip"):
        sampler.set_epoch(1, skip=len(sampler) + 1)


def test_resumable_sampler_splits_a_keyed_pass_like_distributed_sampler(tiles):
    ds, _ = make(tiles)
    n = len(ds)
    for world in (1, 2, 3):
        shares = [ResumableSampler(ds, num_replicas=world, rank=r) for r in range(world)]
        for s in shares:
            s.set_epoch(5)
        got = [list(s) for s in shares]
        assert all(len(g) == len(s) == -(-n // world) for g, s in zip(got, shares))
        assert set(i for g in got for i in g) == set(range(n))
        # Rank r of the same epoch: the same in a new sampler (another process).
        again = ResumableSampler(ds, num_replicas=world, rank=0)
        again.set_epoch(5)
        assert list(again) == got[0]
    s = ResumableSampler(ds)
    s.set_epoch(6)
    assert list(s) != got[0] and sorted(s) == list(range(n))
    assert list(ResumableSampler(ds, shuffle=False)) == list(range(n))
    assert len(ResumableSampler(ds, num_replicas=2, drop_last=True)) == n // 2
    with pytest.raises(ValueError, match="rank 2"):
        ResumableSampler(ds, num_replicas=2, rank=2)


def test_dist_iter_sampler_skips_too(tiles):
    ds, _ = make(tiles)
    s = DistIterSampler(ds, 2, 1, 1)
    s.set_epoch(3)
    whole = list(s)
    s.set_epoch(3, skip=4)
    assert list(s) == whole[4:]


def test_validation_loaders_keep_their_epoch(tiles):
    ds = dlas_fast.create_dataset(dict(OPT, paths=str(tiles), random_seed=3))
    val = dlas_fast.create_dataloader(ds, {"phase": "val", "batch_size": 4})
    first = [keys(b) for b in val]
    assert [keys(b) for b in val] == first and ds.epoch == 0
    val.set_epoch(2)
    assert [keys(b) for b in val] != first and ds.epoch == 2


def test_persistent_workers_resume_too(tiles):
    opt = dict(OPT, paths=str(tiles), batch_size=4, random_seed=3, n_workers=2,
               persistent_workers=True)  # fmt: skip
    ds = dlas_fast.create_dataset(opt)
    loader = dlas_fast.create_dataloader(ds, opt)
    ref = [keys(b) for b in loader] + [keys(b) for b in loader]
    per = len(ref) // 2
    # Loaded into a loader whose workers already ran an epoch: they are replaced.
    ds2 = dlas_fast.create_dataset(opt)
    other = dlas_fast.create_dataloader(ds2, opt)
    list(other)
    state = {**other.state_dict(), "epoch": 1, "batches": 1}
    other.load_state_dict(state)
    assert [keys(b) for b in other] == ref[per + 1 :]


def test_a_dlas_loop_resumed_from_an_old_checkpoint_does_not_repeat_epoch_0(tiles):
    # DLAS's train.py restarts its epoch loop at the saved epoch and restores nothing
    # of the loader: loader.set_epoch(start_epoch) is the one call that keeps a
    # non-distributed run from drawing epoch 0's corruptions again.
    _, loader = make(tiles)
    epochs = [[keys(b) for b in loader] for _ in range(3)]
    _, resumed = make(tiles)
    resumed.set_epoch(2)
    assert [keys(b) for b in resumed] == epochs[2]
    _, forgotten = make(tiles)
    assert [keys(b) for b in forgotten] == epochs[0] != epochs[2]


def test_a_string_seed_is_kept_as_written_and_keys_the_shuffle(tiles):
    _, a = make(tiles, random_seed="run-a")
    it = iter(a)
    next(it)
    state = a.state_dict()
    assert state["random_seed"] == "run-a"
    _, b = make(tiles, random_seed="run-a")
    b.load_state_dict(json.loads(json.dumps(state)))
    assert [keys(x) for x in b] == [keys(x) for x in it]
    _, c = make(tiles, random_seed="run-b")
    with pytest.raises(ValueError, match="run-a.*run-b"):
        c.load_state_dict(state)
    assert [keys(x) for x in make(tiles, random_seed="run-b")[1]] != [
        keys(x) for x in make(tiles, random_seed="run-a")[1]
    ]


def test_a_wrapped_dataset_resumes_with_its_seed_and_epoch(tiles):
    # No random_seed: the seed is drawn. A Subset keeps the dataset in .dataset.
    opt = {**OPT, "paths": str(tiles), "batch_size": 4}

    def loader():
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr("logging.Logger.warning", lambda *a, **k: None)
            ds = dlas_fast.create_dataset(opt)
        return ds, dlas_fast.create_dataloader(torch.utils.data.Subset(ds, range(20)), opt)

    ds, a = loader()
    it = iter(a)
    next(it)
    state = a.state_dict()
    assert state["random_seed"] == ds.opt["random_seed"]
    rest = [keys(b) for b in it] + [keys(b) for b in a]
    assert ds.epoch == 1  # the epoch reached the dataset under the Subset
    ds2, b = loader()
    assert ds2.opt["random_seed"] != state["random_seed"]
    b.load_state_dict(state)
    assert [keys(x) for x in b] + [keys(x) for x in b] == rest


def test_the_place_survives_what_happens_around_it(tiles, monkeypatch):
    _, loader = make(tiles)
    ref = [keys(b) for b in loader]
    _, other = make(tiles)
    # An iterator made before load_state_dict goes on and leaves the new place alone.
    old = iter(other)
    next(old)
    other.load_state_dict({**other.state_dict(), "epoch": 0, "batches": 3})
    assert keys(next(old)) == ref[1]
    assert other.state_dict()["batches"] == 3
    # What is left of the resumed epoch is the iterator's length; the loader's is whole.
    it = iter(other)
    assert len(it) == len(ref) - 3 and len(other) == len(ref)
    assert [keys(b) for b in it] == ref[3:]
    # An iteration that fails to start keeps the place it was to resume.
    _, third = make(tiles)
    third.load_state_dict({**third.state_dict(), "batches": 2})
    real = torch.utils.data.DataLoader._get_iterator
    calls = []

    def once(self):
        calls.append(1)
        if len(calls) == 1:
            raise OSError(24, "Too many open files")
        return real(self)

    monkeypatch.setattr(torch.utils.data.DataLoader, "_get_iterator", once)
    with pytest.raises(OSError):
        iter(third)
    assert [keys(b) for b in third] == ref[2:]
    # set_epoch to another epoch drops a resume loaded for this one.
    _, fourth = make(tiles)
    fourth.load_state_dict({**fourth.state_dict(), "batches": 2})
    fourth.set_epoch(4)
    assert fourth.state_dict()["epoch"] == 4 and fourth.state_dict()["batches"] == 0


def test_epochs_beyond_64_bits_and_unknown_samplers(tiles):
    ds, loader = make(tiles)
    with pytest.raises(ValueError, match="epoch"):
        loader.load_state_dict({**loader.state_dict(), "epoch": 2**63})
    with pytest.raises(ValueError, match="2\\*\\*63"):
        loader.set_epoch(2**64 + 1)
    with pytest.raises(ValueError, match="2\\*\\*63"):
        ds.set_epoch(-1)
    random = dlas_fast.create_dataloader(
        ds, {"batch_size": 4}, sampler=torch.utils.data.RandomSampler(ds)
    )
    with pytest.warns(UserWarning, match="RandomSampler is not known to be a function"):
        random.load_state_dict(random.state_dict())


def test_a_finished_validation_pass_resumes_whole(tiles):
    ds = dlas_fast.create_dataset({**OPT, "paths": str(tiles), "random_seed": 3})
    val = dlas_fast.create_dataloader(ds, {"phase": "val", "batch_size": 4})
    whole = [keys(b) for b in val]
    state = val.state_dict()
    assert state["batches"] == 0
    again = dlas_fast.create_dataloader(ds, {"phase": "val", "batch_size": 4})
    again.load_state_dict(state)
    assert [keys(b) for b in again] == whole
