"""Recycled shared-memory slots for worker batches (dlas_fast.datasets.shm_pool)."""

import gc
import os

import dlas_fast
import numpy as np
import pytest
import torch
from dlas_fast.datasets import shm_pool
from dlas_fast.datasets.batch import collate, zeros_tensor


def _poison_recycled_slots(_worker_id):
    # In the worker: every recycled slot is filled with NaN bytes before the loader
    # writes a batch into it, so a value the loader fails to write shows.
    real = shm_pool.SlotPool.block

    def block(self, shapes):
        flat, views, zeroed, slot = real(self, shapes)
        if not zeroed:
            flat[shm_pool.HEADER :].fill_(0xFF)
        return flat, views, zeroed, slot

    shm_pool.SlotPool.block = block


def _dataset(dst, **opt):
    base = {"mode": "single_image_extensible", "paths": str(dst), "target_size": 64,
            "scale": 2, "random_seed": 3}  # fmt: skip
    return dlas_fast.create_dataset(dict(base, **opt))


def _loader(ds, **kw):
    kw.setdefault("multiprocessing_context", "fork")
    return torch.utils.data.DataLoader(ds, batch_size=2, num_workers=1, collate_fn=collate,
                                       worker_init_fn=_poison_recycled_slots, **kw)  # fmt: skip


def _slots_of_this_run(before: set) -> set:
    return set(shm_pool._MAPPED) - before


def _check(ds, batch, first: int, keys=("hq", "lq", "gt_fullsize_ref", "lq_fullsize_ref",
                                        "gt_center", "lq_center")) -> None:  # fmt: skip
    for j in range(len(batch["GT_path"])):
        item = ds[first + j]
        for key in keys:
            assert batch[key][j].equal(item[key]), (first + j, key)


@pytest.mark.parametrize("need_ref", [True, False])
def test_slots_are_recycled_and_every_value_is_rewritten(golden_extracted, need_ref):
    dst, _ = golden_extracted
    ds = _dataset(dst, need_ref=need_ref)
    before = set(shm_pool._MAPPED)
    n = 0
    for n, b in enumerate(_loader(ds)):
        _check(ds, b, 2 * n)
        del b  # the slot goes back to the worker
    assert n >= 6
    used = _slots_of_this_run(before)
    # A handful of slots served every batch: they were reused, each time over the
    # previous batch's values (poisoned in between), and every value came out right.
    assert 1 <= len(used) <= 4 < n


def test_batches_kept_by_the_loop_are_never_overwritten(golden_extracted):
    dst, _ = golden_extracted
    ds = _dataset(dst, need_ref=True)
    kept = list(_loader(ds))  # every batch held: no slot is ever freed
    part = kept[1]["hq"][1].clone()
    view_only = kept[2]["lq"][0]  # a view alone keeps its slot busy
    first_of_view = kept[2]["lq"][0].clone()
    del kept[2]
    gc.collect()
    for n, b in enumerate(kept):
        _check(ds, b, 2 * n if n < 2 else 2 * (n + 1))
    assert kept[1]["hq"][1].equal(part)
    assert view_only.equal(first_of_view)
    # Past the pool's size, batches went to fresh shared memory instead (torch's own,
    # which it reports as shared; slots are not).
    assert len(kept) + 1 > shm_pool.MAX_SLOTS
    assert any(b["hq"].is_shared() for b in kept[shm_pool.MAX_SLOTS :])


def test_slots_persist_across_epochs_with_persistent_workers(golden_extracted):
    dst, _ = golden_extracted
    ds = _dataset(dst, need_ref=True)
    loader = torch.utils.data.DataLoader(ds, batch_size=2, num_workers=1, collate_fn=collate,
                                         persistent_workers=True,
                                         multiprocessing_context="fork",
                                         worker_init_fn=_poison_recycled_slots)  # fmt: skip
    before = set(shm_pool._MAPPED)
    for _epoch in range(3):
        for n, b in enumerate(loader):
            _check(ds, b, 2 * n)
    # One worker for all three epochs: its slots were mapped once.
    assert len({token for token, _ in _slots_of_this_run(before)}) == 1
    assert len(_slots_of_this_run(before)) <= 4


def test_spawned_workers_use_slots_too(golden_extracted):
    dst, _ = golden_extracted
    ds = _dataset(dst, need_ref=False)
    before = set(shm_pool._MAPPED)
    for n, b in enumerate(_loader(ds, multiprocessing_context="spawn")):
        _check(ds, b, 2 * n)
    assert _slots_of_this_run(before)


def test_a_freed_batch_marks_its_slot_free():
    flat, views, zeroed, slot = shm_pool.SlotPool().block([((4,), torch.float32)])
    assert not zeroed and not slot.free
    # As the main process sees it on arrival.
    mapped = shm_pool.leased("0:test", 0, flat)
    a = mapped[shm_pool.HEADER :].view(torch.float32)
    b = a[1:3]
    del mapped, a
    gc.collect()
    assert not slot.free  # `b` still views the slot
    del b
    gc.collect()
    assert slot.free
    later = shm_pool.leased("0:test", 0, None)  # later batches name the slot only
    assert later.data_ptr() == flat.data_ptr()
    with pytest.raises(RuntimeError, match="never received"):
        shm_pool.leased("0:test", 1, None)
    shm_pool._MAPPED.pop(("0:test", 0))


def test_image_folder_batches_rewrite_every_value_in_recycled_slots(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    for i in range(20):
        Image.fromarray(rng.integers(0, 256, (48, 48, 3), np.uint8)).save(tmp_path / f"{i:03d}.png")
    opt = {"mode": "imagefolder", "paths": str(tmp_path), "target_size": 32, "scale": 2,
           "random_seed": 5, "disable_flip": False, "fetch_alt_tiled_image": True,
           "fixed_corruptions": ["jpeg-low", "gaussian_blur"], "fixed_parameters": {"k": 2},
           "normalize": "imagenet"}  # fmt: skip
    ds = dlas_fast.create_dataset(opt)
    before = set(shm_pool._MAPPED)
    n = 0
    for n, b in enumerate(_loader(ds)):
        for j in range(len(b["HQ_path"])):
            item = ds[2 * n + j]
            for key in ("hq", "lq", "alt_hq", "corruption_entropy", "k"):
                torch.testing.assert_close(b[key][j], item[key], rtol=0, atol=0)
            assert bool(b["has_alt"][j]) == item["has_alt"]
        del b
    assert n >= 6 and 1 <= len(_slots_of_this_run(before)) <= 4


def test_stopping_mid_epoch_with_persistent_workers(golden_extracted):
    dst, _ = golden_extracted
    ds = _dataset(dst, need_ref=True)
    loader = torch.utils.data.DataLoader(ds, batch_size=2, num_workers=2, collate_fn=collate,
                                         persistent_workers=True, prefetch_factor=3,
                                         multiprocessing_context="fork",
                                         worker_init_fn=_poison_recycled_slots)  # fmt: skip
    for _epoch in range(3):
        for n, b in enumerate(loader):
            _check(ds, b, 2 * n)
            if n == 1:
                break  # batches already prefetched are drained by the next epoch's reset
    for n, b in enumerate(loader):
        _check(ds, b, 2 * n)


def test_a_forked_copy_of_a_batch_never_frees_its_slot():
    flat, _views, _zeroed, slot = shm_pool.SlotPool().block([((4,), torch.float32)])
    batch = shm_pool.leased("0:fork", 0, flat)
    pid = os.fork()
    if pid == 0:  # the child drops its copy of the batch and collects it
        del batch
        gc.collect()
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    assert status == 0
    assert not slot.free  # the parent still holds the batch
    del batch
    gc.collect()
    assert slot.free
    shm_pool._MAPPED.pop(("0:fork", 0))


def test_a_slot_batch_cannot_be_rebuilt_in_the_worker_that_made_it():
    pool = shm_pool.SlotPool()
    flat, _views, _zeroed, slot = pool.block([((4,), torch.float32)])
    with pytest.raises(RuntimeError, match="worker that made it"):
        shm_pool.leased(pool.token, slot.ident, flat)


@pytest.mark.parametrize("shape", [(3, 5), (16, 4, 128, 128)])
def test_zero_tensors_are_zero_writable_and_independent(shape):
    # Small ones come from numpy, large ones from a memory map of their own: both are
    # zeros of the asked shape and dtype, writable, and no two share memory.
    a, b = zeros_tensor(shape), zeros_tensor(shape)
    assert a.shape == shape and a.dtype == torch.float32
    assert not a.any()
    a += 1
    assert a.sum().item() == a.numel()
    assert not b.any()
    c = zeros_tensor(shape, torch.int64)
    assert c.dtype == torch.int64 and not c.any()
    del a
    gc.collect()
    assert not b.any()


def test_ref_less_batches_carry_zero_refs_threaded_and_from_workers(golden_extracted):
    # The all-zero ref tensors of a ref-less dataset, made as mapped zero pages both by
    # the threaded batch path and in the main process for worker batches.
    dst, _ = golden_extracted
    ds = _dataset(dst)  # gt refs of 4 x 4 x 64 x 64 float32: 256 KiB, mapped
    threaded = next(iter(dlas_fast.create_dataloader(ds, {"batch_size": 4, "n_workers": 0})))
    loader = dlas_fast.create_dataloader(ds, {"batch_size": 4, "n_workers": 2})
    for batch in (threaded, *[b for _, b in zip(range(3), loader)]):
        assert batch["gt_fullsize_ref"].shape == (4, 4, 64, 64)
        assert batch["lq_fullsize_ref"].shape == (4, 4, 32, 32)
        assert not batch["gt_fullsize_ref"].any() and not batch["lq_fullsize_ref"].any()
        assert batch["hq"].abs().sum() > 0
