"""A plain torch DataLoader with torch's default collate takes our whole batches as they
were stacked, like create_dataloader's collate (dlas_fast.datasets.batch)."""

from __future__ import annotations

import copy
import multiprocessing
import warnings
from collections.abc import Sequence
from pathlib import Path

import dlas_fast
import numpy as np
import pytest
import torch
from conftest import gradient, save
from dlas_fast.datasets import batch as batch_mod
from dlas_fast.datasets import shm_pool
from dlas_fast.datasets.batch import Batch, collate
from torch.utils.data import DataLoader, default_collate
from torch.utils.data._utils.collate import collate as torch_collate
from torch.utils.data._utils.collate import default_collate_fn_map

BATCH = 4
# Datasets whose worker batches travel in one shared-memory storage (the slot path).
ONE_STORAGE = {"single_image", "image_folder", "multi_frame"}


@pytest.fixture(scope="module")
def sources(golden_extracted, tmp_path_factory) -> dict[str, dict]:
    """Options of a small dataset of each kind with a batch path."""
    dst, _ = golden_extracted
    folder = tmp_path_factory.mktemp("folder")
    rng = np.random.default_rng(0)
    for i in range(24):
        save(rng.integers(0, 256, (40, 40, 3), np.uint8), folder / f"{i:03d}.png")
    photos = tmp_path_factory.mktemp("multiscale")
    for i in range(12):
        save(gradient(40 + 2 * i, 48, seed=i), photos / f"p{i:02d}.png")
    frames_src = tmp_path_factory.mktemp("frames_src")
    for v in range(2):
        for c in range(1, 5):
            save(gradient(384, 384, seed=10 * v + c), frames_src / f"clip{v}_{c:012d}.png")
    frames = tmp_path_factory.mktemp("frames") / "ds"
    dlas_fast.extract(
        frames_src, frames, crop_sz=[256], step=[128], resize_final_img=[1], min_size=256
    )
    return {
        "single_image": {"mode": "single_image_extensible", "paths": str(dst), "need_ref": True,
                         "target_size": 64, "scale": 2, "random_seed": 3,
                         "fixed_corruptions": ["jpeg", "gaussian_blur"]},
        "image_folder": {"mode": "imagefolder", "paths": str(folder), "target_size": 32,
                         "scale": 2, "random_seed": 5, "disable_flip": False,
                         "fetch_alt_tiled_image": True, "fixed_corruptions": ["jpeg-low"],
                         "fixed_parameters": {"k": 2}},
        "multiscale": {"mode": "multiscale", "paths": [str(photos)], "hq_tile_size": 8,
                       "num_scales": 3, "scale": 2, "random_seed": 1,
                       "fixed_corruptions": ["jpeg"]},
        "multi_frame": {"mode": "multi_frame_extensible", "paths": str(frames),
                        "num_frames": 2, "target_size": 64, "scale": 2, "need_ref": True,
                        "random_seed": 7},
    }  # fmt: skip


def order_of(ds, n: int = 16, seed: int = 0) -> list[int]:
    """A fixed shuffled order of n items (all of them when fewer): a sampler."""
    perm = torch.randperm(len(ds), generator=torch.Generator().manual_seed(seed)).tolist()
    return perm[:n]


def assert_batches_equal(got: list, want: list) -> None:
    assert len(got) == len(want) > 0
    for n, (a, b) in enumerate(zip(got, want)):
        assert type(a) is dict and list(a) == list(b), n
        for k in a:
            if isinstance(b[k], torch.Tensor):
                assert a[k].dtype == b[k].dtype and a[k].equal(b[k]), (n, k)
            else:
                assert a[k] == b[k], (n, k)


def one_storage(b: dict) -> bool:
    """Whether the batch's hq and lq view one storage: how a worker batch arrives by the
    shared-memory slot path (torch's own collate stacks each key into its own)."""
    return b["hq"].untyped_storage().data_ptr() == b["lq"].untyped_storage().data_ptr()


@pytest.fixture()
def spy(monkeypatch):
    """Counts the batches dlas_fast's collate passes on (in this process and in forked
    workers) and keeps the last one made in this process."""
    calls = multiprocessing.get_context("fork").Value("i", 0)
    last = {}
    real = batch_mod.collate

    def counting(batch):
        with calls.get_lock():
            calls.value += 1
        out = last["out"] = real(batch)
        last["stacked"] = batch.stacked
        return out

    monkeypatch.setattr(batch_mod, "collate", counting)
    return calls, last


@pytest.mark.parametrize("name", ["single_image", "image_folder", "multiscale", "multi_frame"])
@pytest.mark.parametrize("workers", [0, 2])
def test_plain_dataloader_batches_equal_create_dataloaders(sources, name, workers, spy):
    ds = dlas_fast.create_dataset(sources[name])
    order = order_of(ds)
    opt = {"phase": "train", "batch_size": BATCH, "n_workers": workers, "pin_memory": False}
    ours = list(dlas_fast.create_dataloader(ds, opt, sampler=order))
    calls, last = spy
    calls.value = 0
    ds.set_epoch(0)  # the epoch create_dataloader gave it
    context = "fork" if workers else None
    plain = DataLoader(ds, batch_size=BATCH, sampler=order, num_workers=workers,
                       drop_last=True, multiprocessing_context=context)  # fmt: skip
    assert plain.collate_fn is default_collate
    got = []
    for b in plain:
        if workers == 0:
            # The Batch's own stacked tensors, not a copy.
            assert b is last["out"] and b["hq"] is last["stacked"]["hq"]
        got.append(b)
    assert_batches_equal(got, ours)
    # Every batch went through dlas_fast's collate (in the workers too).
    assert calls.value == len(got) == len(order) // BATCH
    if workers and name in ONE_STORAGE:
        # After each worker's first batch, batches come in shared-memory slots.
        assert [one_storage(b) for b in got] == [False] * workers + [True] * (len(got) - workers)


def test_default_collate_on_a_batch_and_on_lists_of_its_items(sources):
    ds = dlas_fast.create_dataset(sources["single_image"])
    batch = ds.__getitems__([5, 0, 9, 17])
    assert isinstance(batch, Batch)
    stacked = default_collate(batch)
    assert stacked is batch.stacked and stacked is collate(batch)
    items = list(batch)
    copy = default_collate(items)
    assert_batches_equal([copy], [stacked])
    assert copy["hq"].data_ptr() != stacked["hq"].data_ptr()  # stacked again
    rev = default_collate(items[::-1])
    part = default_collate(batch[1:3])
    for k in ("hq", "lq", "gt_fullsize_ref", "gt_center"):
        assert rev[k].equal(stacked[k].flip(0)) and part[k].equal(stacked[k][1:3]), k
    assert rev["GT_path"] == stacked["GT_path"][::-1]
    assert part["LQ_path"] == stacked["LQ_path"][1:3]
    # Mixed with a dict of the user's own.
    mixed = default_collate([items[2], dict(ds[0])])
    assert mixed["hq"][0].equal(stacked["hq"][2]) and mixed["hq"][1].equal(stacked["hq"][1])
    assert type(mixed) is dict and mixed["GT_path"] == [stacked["GT_path"][2], ds[0]["GT_path"]]


def test_a_map_with_its_own_tensor_collate_is_applied(sources):
    ds = dlas_fast.create_dataset(sources["single_image"])
    batch = ds.__getitems__([1, 2])

    def doubled(tensors, *, collate_fn_map=None):
        return torch.stack(tensors) * 2

    custom = {**default_collate_fn_map, torch.Tensor: doubled}
    out = torch_collate(batch, collate_fn_map=custom)
    assert out["hq"].equal(batch.stacked["hq"] * 2) and out["GT_path"] == batch.stacked["GT_path"]


def _received(batch):
    """A custom collate_fn: what it was given, described."""
    return {
        "sequence": isinstance(batch, Sequence) and not isinstance(batch, dict),
        "items": [
            (isinstance(it, dict), {k: tuple(v.shape) for k, v in it.items() if torch.is_tensor(v)},
             it["GT_path"])
            for it in batch
        ],
    }  # fmt: skip


def _as_list(batch):
    return list(batch)


@pytest.mark.parametrize("workers", [0, 2])
def test_a_custom_collate_fn_receives_the_items(sources, workers):
    ds = dlas_fast.create_dataset(sources["single_image"])
    order = order_of(ds, 8)
    kw = {"batch_size": BATCH, "sampler": order, "num_workers": workers}
    if workers:
        kw["multiprocessing_context"] = "fork"
    for got in DataLoader(ds, collate_fn=_received, **kw):
        assert got["sequence"] and len(got["items"]) == BATCH
        for is_dict, shapes, path in got["items"]:
            assert is_dict and isinstance(path, str)
            assert shapes == {"lq": (3, 32, 32), "hq": (3, 64, 64),
                              "gt_fullsize_ref": (4, 64, 64), "lq_fullsize_ref": (4, 32, 32),
                              "lq_center": (2,), "gt_center": (2,)}  # fmt: skip
    # The items themselves, returned by the collate_fn: plain dicts of per-item tensors.
    got = [it for b in DataLoader(ds, collate_fn=_as_list, **kw) for it in b]
    assert len(got) == len(order)
    for it, i in zip(got, order):
        assert type(it) is dict if workers else isinstance(it, dict)
        want = ds[i]
        assert it.keys() == want.keys()
        for k, v in want.items():
            assert it[k].equal(v) if torch.is_tensor(v) else it[k] == v, k


def _copied(batch):
    return copy.copy(default_collate(batch))


def _deep_copied(batch):
    return copy.deepcopy(default_collate(batch))


@pytest.mark.parametrize("collate_fn", [_copied, _deep_copied])
def test_a_custom_collate_fn_may_copy_default_collates_result(sources, collate_fn):
    # In a worker, default_collate's result for a whole batch is dlas_fast's shared-memory
    # batch; copies of it are plain dicts that travel as torch sends any tensor.
    ds = dlas_fast.create_dataset(sources["single_image"])
    order = order_of(ds, 24)
    got = list(DataLoader(ds, batch_size=BATCH, sampler=order, num_workers=1,
                          collate_fn=collate_fn, multiprocessing_context="fork"))  # fmt: skip
    assert_batches_equal(got, list(DataLoader(ds, batch_size=BATCH, sampler=order)))


def _cropped(batch):
    out = default_collate(batch)
    out["hq"] = out["hq"][:, :, 16:48, 8:40]  # a crop: a non-contiguous view
    out["lq"] = out["lq"].permute(0, 2, 3, 1)  # channels last: another
    out["lq_fullsize_ref"] = out["lq_fullsize_ref"] + 1  # an all-zero key replaced
    return out


def test_views_a_custom_collate_fn_makes_of_the_batch_arrive_as_made(sources):
    # From a worker, default_collate's result travels as one shared-memory storage and
    # offsets into it; a crop or permutation of it must not come back as the wrong
    # pixels, nor a replaced all-zero tensor as zeros.
    opt = dict(sources["single_image"], need_ref=False)
    ds = dlas_fast.create_dataset(opt)
    order = order_of(ds, 32, seed=2)
    want = [_cropped(b) for b in DataLoader(ds, batch_size=BATCH, sampler=order,
                                             collate_fn=lambda b: b)]  # fmt: skip
    got = list(DataLoader(ds, batch_size=BATCH, sampler=order, num_workers=2,
                          collate_fn=_cropped, multiprocessing_context="fork"))  # fmt: skip
    assert_batches_equal(got, want)
    assert all(b["lq_fullsize_ref"].eq(1).all() for b in got)


def test_kept_batches_are_never_overwritten(sources):
    ds = dlas_fast.create_dataset(sources["single_image"])
    order = order_of(ds, 64, seed=1)
    # 2 workers, 16 batches each: more than a worker's slots, and every batch is kept.
    loader = DataLoader(ds, batch_size=2, sampler=order, num_workers=2,
                        multiprocessing_context="fork")  # fmt: skip
    before = set(shm_pool._MAPPED)
    kept = list(loader)
    assert len(kept) // 2 > shm_pool.MAX_SLOTS
    # Each worker filled its slots, then (none freed) took fresh shared memory.
    assert len(set(shm_pool._MAPPED) - before) == 2 * shm_pool.MAX_SLOTS
    assert sum(one_storage(b) for b in kept) == len(kept) - 2
    again = list(DataLoader(ds, batch_size=2, sampler=order, num_workers=0))
    assert_batches_equal(kept, again)


def test_pin_memory_persistent_workers_two_epochs(sources):
    ds = dlas_fast.create_dataset(sources["single_image"])
    order = order_of(ds, 24)
    with warnings.catch_warnings():
        # No accelerator here: torch says so and does not pin.
        warnings.filterwarnings("ignore", message=".*pin_memory.*", category=UserWarning)
        loader = DataLoader(ds, batch_size=BATCH, sampler=order, num_workers=2,
                            pin_memory=True, persistent_workers=True,
                            multiprocessing_context="fork")  # fmt: skip
        epochs = []
        for epoch in range(2):
            ds.set_epoch(epoch)
            epochs.append(list(loader))
    for epoch, got in enumerate(epochs):
        ds.set_epoch(epoch)
        assert_batches_equal(got, list(DataLoader(ds, batch_size=BATCH, sampler=order)))
    # Past each worker's first batch, batches come in slots, in the second epoch from
    # the first batch on (the workers persisted).
    assert [one_storage(b) for b in epochs[0]] == [False, False] + [True] * 4
    assert all(one_storage(b) for b in epochs[1])
    assert not epochs[0][0]["lq"].equal(epochs[1][0]["lq"])  # the epoch keys the draws


def test_spawned_workers_take_the_same_path(sources):
    ds = dlas_fast.create_dataset(sources["single_image"])
    order = order_of(ds, 16)
    got = list(DataLoader(ds, batch_size=BATCH, sampler=order, num_workers=2,
                          multiprocessing_context="spawn"))  # fmt: skip
    assert_batches_equal(got, list(DataLoader(ds, batch_size=BATCH, sampler=order)))
    # Spawned workers registered the batch type when they unpickled the dataset.
    assert [one_storage(b) for b in got] == [False, False, True, True]


def test_items_pickle_as_plain_dicts(sources):
    import pickle

    ds = dlas_fast.create_dataset(sources["single_image"])
    item = ds.__getitems__([3, 4])[1]
    back = pickle.loads(pickle.dumps(item))
    assert type(back) is dict and back["hq"].equal(item["hq"])
    assert Path(back["GT_path"]) == Path(item["GT_path"])
