"""Training data independent of how many processes read it: the same sample
gets the same augmentation whatever the world size, sampler and worker count; the
epoch reaches persistent workers; an unseeded dataset draws one seed, reports it and
shares it across DDP ranks."""

from __future__ import annotations

import json
import logging
import os
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import dlas_fast
import pytest
import torch
from conftest import gradient, save
from dlas_fast.samplers import DistIterSampler
from torch.utils.data import DistributedSampler

OPT = {
    "mode": "imagefolder",
    "phase": "train",
    "target_size": 32,
    "scale": 2,
    "all_image_color_jitter": 0.2,
    "fixed_corruptions": ["jpeg-broad", "gaussian_blur"],
    "random_corruptions": ["noise-5", "none"],
    "num_corrupts_per_image": 1,
    "batch_size": 2,
    "n_workers": 0,
}


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("rank_photos")
    for i in range(9):
        save(gradient(48 + 4 * i, 40, seed=100 + i), root / f"p{i:02d}.jpg")
    return root


def make(photos, **kw):
    return dlas_fast.create_dataset(dict(OPT, paths=str(photos), **kw))


def by_path(loaders, epoch: int) -> dict[str, torch.Tensor]:
    """path -> (lq, hq) of every item the loaders (one per rank) give in `epoch`."""
    out = {}
    for loader in loaders:
        loader.sampler.set_epoch(epoch)  # what DLAS's training loop does
        for batch in loader:
            for path, lq, hq in zip(batch["HQ_path"], batch["lq"], batch["hq"]):
                got = torch.cat([lq.flatten(), hq.flatten()])
                assert path not in out or out[path].equal(got)  # a repeat is the same
                out[path] = got
    return out


@pytest.mark.parametrize(
    "world,workers,persistent,sampler",
    [(2, 0, False, "torch"), (3, 2, True, "torch"), (2, 2, False, "dlas"), (4, 1, True, "dlas")],
)
def test_same_augmentation_whatever_world_size_sampler_and_workers(
    photos, world, workers, persistent, sampler
):
    # One process, item by item.
    reference = make(photos, random_seed=11)
    # Epochs the loader would not count to by itself: the sampler's must reach the items.
    epochs = (3, 7)
    expected = {}
    for epoch in epochs:
        reference.set_epoch(epoch)
        expected[epoch] = {}
        for i, path in enumerate(reference.get_paths()):
            item = reference[i]
            expected[epoch][path] = torch.cat([item["lq"].flatten(), item["hq"].flatten()])
    first = reference.get_paths()[0]
    assert not expected[3][first].equal(expected[7][first])  # a new epoch, new draws

    loaders = []
    for rank in range(world):
        ds = make(photos, random_seed=11)
        if sampler == "torch":
            s = DistributedSampler(ds, num_replicas=world, rank=rank)
        else:
            s = DistIterSampler(ds, num_replicas=world, rank=rank, ratio=1)
        opt = dict(OPT, n_workers=workers, persistent_workers=persistent)
        loader = dlas_fast.create_dataloader(ds, opt, sampler=s)
        assert loader.persistent_workers == persistent
        loaders.append(loader)
    for epoch in epochs:
        got = by_path(loaders, epoch)
        # Every item is seen by some rank (drop_last may leave a few out of a pass).
        assert set(got) <= set(expected[epoch]) and len(got) >= len(expected[epoch]) - world * 2
        for path, value in got.items():
            assert value.equal(expected[epoch][path]), (epoch, path)


def test_dist_iter_sampler_splits_one_permutation_and_sets_the_epoch(photos):
    ds = make(photos, random_seed=1)
    samplers = [DistIterSampler(ds, num_replicas=3, rank=r, ratio=4) for r in range(3)]
    for s in samplers:
        s.set_epoch(5)
    shares = [list(s) for s in samplers]
    assert all(len(sh) == len(s) == 12 for sh, s in zip(shares, samplers))  # ceil(9*4/3)
    merged = sorted(i for sh in shares for i in sh)
    assert merged == sorted(list(range(9)) * 4)  # 4 passes, split without overlap
    assert ds.epoch == 5  # set_epoch reached the dataset
    samplers[0].set_epoch(6)
    assert list(samplers[0]) != shares[0]
    with pytest.raises(ValueError, match="rank 3"):
        DistIterSampler(ds, num_replicas=3, rank=3)


def test_an_unseeded_dataset_draws_one_seed_and_reports_it(photos, caplog):
    with caplog.at_level(logging.WARNING, logger="dlas_fast"):
        ds = make(photos)
    seed = ds.opt["random_seed"]
    assert isinstance(seed, int)
    assert f"random_seed={seed}" in caplog.text
    ds.set_epoch(3)
    first = ds[4]["lq"]
    assert ds[4]["lq"].equal(first)  # keyed, not fresh per call
    # A spawned worker (a pickle) uses the same seed, and so does a run given it.
    assert pickle.loads(pickle.dumps(ds))[4]["lq"].equal(first)
    again = make(photos, random_seed=seed)
    again.set_epoch(3)
    assert again[4]["lq"].equal(first)
    assert not make(photos)[4]["lq"].equal(first)  # another run, another seed


RANK_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import torch, torch.distributed as dist
    import dlas_fast
    from torch.utils.data import DistributedSampler

    rank, world, init, photos, out = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
    rank, world = int(rank), int(world)
    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=world)
    opt = json.loads(sys.argv[6])
    opt["paths"] = photos
    ds = dlas_fast.create_dataset(opt)  # no random_seed: drawn on rank 0, sent to all
    sampler = DistributedSampler(ds)
    loader = dlas_fast.create_dataloader(ds, opt, {"dist": True}, sampler=sampler)
    sampler.set_epoch(2)
    items = {}
    for batch in loader:
        for p, lq in zip(batch["HQ_path"], batch["lq"]):
            items[p] = lq.flatten().tolist()
    json.dump({"seed": ds.opt["random_seed"], "epoch": ds.epoch, "items": items},
              open(out, "w"))
    dist.destroy_process_group()
    """
)


def test_ddp_ranks_share_the_drawn_seed(photos, tmp_path):
    script = tmp_path / "rank.py"
    script.write_text(RANK_SCRIPT)
    init = f"file://{tmp_path / 'rendezvous'}"
    opt = dict(OPT, batch_size=2)
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                str(script),
                str(r),
                "2",
                init,
                str(photos),
                str(tmp_path / f"rank{r}.json"),
                json.dumps(opt),
            ],
            env=dict(os.environ, OMP_NUM_THREADS="1"),
        )  # fmt: skip
        for r in range(2)
    ]
    for p in procs:
        assert p.wait(timeout=300) == 0
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    assert ranks[0]["seed"] == ranks[1]["seed"]
    assert ranks[0]["epoch"] == ranks[1]["epoch"] == 2  # the sampler's epoch
    # Each rank its share (DistributedSampler pads 9 items to 10 with a repeat).
    assert len(set(ranks[0]["items"]) & set(ranks[1]["items"])) <= 1
    assert len(set(ranks[0]["items"]) | set(ranks[1]["items"])) >= 8  # batches drop 1
    # The same items as one process given that seed.
    ref = make(photos, random_seed=ranks[0]["seed"])
    ref.set_epoch(2)
    paths = ref.get_paths()
    for r in ranks:
        for path, lq in r["items"].items():
            assert torch.tensor(lq).equal(ref[paths.index(path)]["lq"].flatten()), path


def test_the_loader_takes_the_samplers_epoch_and_sets_it(photos):
    ds = make(photos, random_seed=2)
    sampler = DistributedSampler(ds, num_replicas=2, rank=1)
    loader = dlas_fast.create_dataloader(ds, OPT, sampler=sampler)
    loader.set_epoch(5)  # e.g. on resume: the sampler's epoch, so its shuffle follows
    assert sampler.epoch == 5 and loader.current_epoch() == 5
    order5 = list(sampler)
    next(iter(loader))
    assert ds.epoch == 5
    sampler.set_epoch(6)  # what DLAS's loop does each epoch
    next(iter(loader))
    assert ds.epoch == 6 and list(sampler) != order5
    # Without a sampler epoch: the loader counts, from where set_epoch puts it.
    plain = dlas_fast.create_dataloader(ds, OPT)
    next(iter(plain))
    assert ds.epoch == 0
    plain.set_epoch(9)
    next(iter(plain))
    next(iter(plain))
    assert ds.epoch == 10
