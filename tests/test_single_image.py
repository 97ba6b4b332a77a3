"""SingleImageDataset (docs/spec.md §4-5) and the registry (docs/spec.md §8)."""

from __future__ import annotations

import json
import os
import pickle
import warnings
from pathlib import Path

import cv2
import dlas_fast
import numpy as np
import pytest
import torch
from conftest import DATA, gradient, save
from dlas_fast import CentersFileError, DlasError

GOLDEN = json.loads((DATA / "single_image.json").read_text())


def item_of(ds, source: str, tile_index: int) -> dict:
    index = ds.tiles.indexes[0]
    names = [index.chunk_name(i) for i in range(index.num_chunks)]
    chunk = names.index(source)
    start = sum(index.chunk_len(i) for i in range(chunk))
    return ds[start + tile_index]


@pytest.mark.parametrize("config", sorted(GOLDEN["configs"]))
def test_matches_what_dlas_returned(golden_extracted, config):
    dst, _ = golden_extracted
    cfg = GOLDEN["configs"][config]
    opt = dict(cfg["options"], paths=[str(dst)])
    ds = dlas_fast.create_dataset(opt)
    for expected in cfg["items"]:
        out = item_of(ds, expected["source"], expected["tile_index"])
        for key in ("lq", "hq", "gt_fullsize_ref", "lq_fullsize_ref"):
            t, e = out[key], expected[key]
            assert list(t.shape) == e["shape"] and t.dtype == torch.float32, key
            # Our extraction re-encodes the tiles: means agree to about 1/255.
            np.testing.assert_allclose(t.mean(dim=(1, 2)).numpy(), e["channel_mean"], atol=1 / 255)
        for key in ("lq_center", "gt_center"):
            assert out[key].dtype == torch.int64 and out[key].shape == (2,)
            assert out[key].tolist() == expected[key]["value"], key
        assert out["LQ_path"] == out["GT_path"]
        assert out["GT_path"].startswith(os.path.join(str(dst), expected["source"]) + os.sep)


def dlas_pipeline(tile, ref, centre, width, target, multiple, scale):
    """DLAS's resize_hq + synthesize_lq (no corruption), with OpenCV on float32 as DLAS."""
    mask = np.full(tile.shape[:2], 0.1, np.float32)
    r0, c0 = max(centre[0] - width // 2, 0), max(centre[1] - width // 2, 0)
    mask[r0 : centre[0] + width // 2, c0 : centre[1] + width // 2] = 1
    h, w = tile.shape[:2]

    def point(p, old, new):
        return int(new[0] / old[0] * p[0]), int(new[1] / old[1] * p[1])

    if target is not None and target != h:
        tile, ref, mask = (cv2.resize(a, (target, target), interpolation=cv2.INTER_AREA)
                           for a in (tile, ref, mask))  # fmt: skip
        centre = point(centre, (h, w), (target, target))
        h = w = target
    m = multiple * scale
    if h % m:
        nh = h - h % m
        centre = point(centre, (h, w), (nh, nh))
        tile, ref, mask = tile[:nh, :nh], ref[:nh, :nh], mask[:nh, :nh]
        h = w = nh
    lq, lref, lmask = (cv2.resize(a, (h // scale, w // scale), interpolation=cv2.INTER_AREA)
                       for a in (tile, ref, mask))  # fmt: skip
    lcentre = point(centre, (h, w), lq.shape[:2])

    def chw(img, m):
        return (
            np.concatenate([img.transpose(2, 0, 1), m[None]], 0)
            if m is not None
            else img.transpose(2, 0, 1)
        )

    return {
        "hq": chw(tile, None),
        "gt_fullsize_ref": chw(ref, mask),
        "lq": chw(lq, None),
        "lq_fullsize_ref": chw(lref, lmask),
        "gt_center": centre,
        "lq_center": lcentre,
    }


@pytest.mark.parametrize(
    "target,multiple,scale", [(None, 1, 2), (200, 4, 2), (96, 16, 3), (256, 1, 4)]
)
def test_pixels_match_an_independent_opencv_pipeline(golden_extracted, target, multiple, scale):
    dst, _ = golden_extracted
    base = {"mode": "single_image_extensible", "paths": str(dst), "need_ref": True, "strict": True}
    raw = dlas_fast.create_dataset(dict(base, eval=True))  # hq = the decoded tile, as is
    opt = dict(base, scale=scale, force_multiple=multiple)
    if target is not None:
        opt["target_size"] = target
    if target is not None and (target // scale) % multiple:
        pytest.skip("not a valid combination")
    ds = dlas_fast.create_dataset(opt)
    for i in (0, 7, len(ds) - 1):
        plain = raw[i]
        tile = plain["hq"].numpy().transpose(1, 2, 0).copy()
        ref = plain["gt_fullsize_ref"][:3].numpy().transpose(1, 2, 0).copy()
        index, chunk, t = ds.tiles.locate(i)
        centre, width = index.centre(chunk, t)
        expected = dlas_pipeline(tile, ref, centre, width, target, multiple, scale)
        got = ds[i]
        for key in ("hq", "gt_fullsize_ref", "lq", "lq_fullsize_ref"):
            assert got[key].shape == expected[key].shape, key
            np.testing.assert_allclose(got[key].numpy(), expected[key], atol=2e-5, err_msg=key)
        assert tuple(got["gt_center"].tolist()) == expected["gt_center"]
        assert tuple(got["lq_center"].tolist()) == expected["lq_center"]


def test_without_ref_or_metadata(golden_extracted):
    dst, _ = golden_extracted
    no_ref = dlas_fast.create_dataset(
        {"mode": "single_image_extensible", "paths": str(dst), "scale": 2}
    )
    out = no_ref[0]
    assert out["gt_fullsize_ref"].abs().sum() == 0 and out["gt_center"].tolist() == [0, 0]
    assert out["lq_fullsize_ref"].shape[0] == 4
    loose = dlas_fast.create_dataset(
        {"mode": "single_image_extensible", "paths": str(dst), "need_ref": True, "eval": True}
    )
    out = loose[0]
    assert out["gt_center"].tolist() == [128, 128]  # DLAS's default without centers.pt
    # rows and cols [128 - 128, 128 + 128): the whole 256x256 tile.
    assert bool((out["gt_fullsize_ref"][3] == 1.0).all())


def small_dataset(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    save(gradient(600, 600, seed=5), src / "one.png")
    dst = tmp_path / "ds"
    dlas_fast.extract(src, dst, crop_sz=[256], step=[256], resize_final_img=[1])
    return dst


def test_strict_errors_name_the_file(tmp_path):
    dst = small_dataset(tmp_path)
    opt = {"mode": "single_image_extensible", "paths": str(dst), "need_ref": True, "strict": True,
           "on_error": "raise"}  # fmt: skip
    dlas_fast.write_centers(dst / "one" / "centers.pt", [(1, (1, 1), 8)])  # tile 2 missing
    ds = dlas_fast.create_dataset(opt)
    ds[0]
    with pytest.raises(DlasError, match=r"00000002\.jpg.*centers\.pt"):
        ds[1]
    (dst / "one" / "centers.pt").write_bytes(b"\x80\x02cos\nsystem\nq\x00.")
    with pytest.raises(CentersFileError, match="centers.pt"):
        dlas_fast.create_dataset(opt)[0]
    (dst / "one" / "00000003.jpg").write_bytes(b"broken")
    with pytest.raises(dlas_fast.DecodeError, match=r"00000003\.jpg"):
        dlas_fast.create_dataset(dict(opt, strict=False))[2]


def test_options_are_checked(tmp_path):
    dst = small_dataset(tmp_path)
    base = {"mode": "single_image_extensible", "paths": str(dst)}
    with pytest.raises(ValueError, match="force_multiple"):
        dlas_fast.create_dataset(dict(base, target_size=100, scale=2, force_multiple=32))
    # Unknown corruption names fail when the dataset is built, even in eval mode.
    with pytest.raises(ValueError, match=r"fixed_corruptions.*jpeg-ultra.*known: none"):
        dlas_fast.create_dataset(dict(base, eval=True, fixed_corruptions=["jpeg-ultra"]))
    with pytest.warns(UserWarning, match="colour_typo"):
        dlas_fast.create_dataset(dict(base, colour_typo=1))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # trainer keys are accepted silently
        dlas_fast.create_dataset(dict(base, name="x", phase="train", batch_size=4, n_workers=2))


def test_registry(tmp_path):
    with pytest.raises(ValueError, match="single_image_extensible"):
        dlas_fast.create_dataset({"mode": "no_such_mode"})
    with pytest.raises(ValueError, match="outside dlas_fast's scope"):
        dlas_fast.create_dataset({"mode": "zipfile"})

    class Tiny(torch.utils.data.Dataset):
        def __init__(self, opt):
            self.n = opt["n"]

        def __len__(self):
            return self.n

        def __getitem__(self, i):
            return {"hq": torch.full((3, 4, 4), float(i))}

    dlas_fast.register_dataset("tiny", Tiny)
    ds, collate = dlas_fast.create_dataset({"mode": "tiny", "n": 10}, return_collate=True)
    assert len(ds) == 10 and collate is None
    assert dlas_fast.get_dataset_debugger({"mode": "tiny"}) is None
    train = dlas_fast.create_dataloader(ds, {"phase": "train", "batch_size": 4, "n_workers": 0})
    assert train.batch_size == 4 and train.drop_last and len(train) == 2
    val = dlas_fast.create_dataloader(ds, {"phase": "val", "batch_size": None})
    assert val.batch_size == 1 and not val.drop_last


@pytest.mark.parametrize("context", ["fork", "spawn"])
def test_dataloader_workers(golden_extracted, context):
    dst, _ = golden_extracted
    opt = {"mode": "single_image_extensible", "paths": str(dst), "need_ref": True,
           "strict": True, "target_size": 128, "scale": 2}  # fmt: skip
    ds = dlas_fast.create_dataset(opt)
    assert pickle.loads(pickle.dumps(ds))[3]["hq"].equal(ds[3]["hq"])
    loader = torch.utils.data.DataLoader(ds, batch_size=8, num_workers=2,
                                         multiprocessing_context=context)  # fmt: skip
    seen = 0
    for batch in loader:
        assert batch["hq"].shape[1:] == (3, 128, 128) and batch["lq"].shape[1:] == (3, 64, 64)
        assert batch["gt_center"].dtype == torch.int64
        for j in (0, len(batch["GT_path"]) - 1):
            direct = ds[seen + j]
            assert batch["hq"][j].equal(direct["hq"]) and batch["GT_path"][j] == direct["GT_path"]
        seen += len(batch["GT_path"])
    assert seen == len(ds)


def test_batch_path_equals_items(golden_extracted):
    dst, _ = golden_extracted
    opt = {"mode": "single_image_extensible", "paths": str(dst), "need_ref": True,
           "strict": True, "target_size": 128, "scale": 2}  # fmt: skip
    ds = dlas_fast.create_dataset(opt)
    idx = [5, 0, len(ds) - 1, 17, 17]
    batch = ds.__getitems__(idx)
    assert len(batch) == len(idx)
    stacked = dlas_fast.datasets.batch.collate(batch)
    default = torch.utils.data.default_collate(batch)
    for j, i in enumerate(idx):
        item = ds[i]
        for key in ("lq", "hq", "gt_fullsize_ref", "lq_fullsize_ref", "lq_center", "gt_center"):
            assert stacked[key][j].equal(item[key]), key
            assert default[key][j].equal(item[key]), key
            assert stacked[key].dtype == item[key].dtype
        assert stacked["GT_path"][j] == item["GT_path"] == batch[j]["LQ_path"]
    no_ref = dlas_fast.create_dataset(dict(opt, need_ref=False))
    b = dlas_fast.datasets.batch.collate(no_ref.__getitems__([1, 2]))
    assert b["gt_fullsize_ref"].abs().sum() == 0 and b["gt_center"].tolist() == [[0, 0], [0, 0]]


def test_batches_of_mixed_tile_sizes_fall_back_to_items(tmp_path):
    src = tmp_path / "src"
    save(gradient(600, 600, seed=1), src / "a.png")
    dst = tmp_path / "ds"
    dlas_fast.extract(src, dst, crop_sz=[256, 512], step=[256, 512], resize_final_img=[1, 0.75])
    ds = dlas_fast.create_dataset(
        {"mode": "single_image_extensible", "paths": str(dst), "scale": 2}
    )
    sizes = {ds[i]["hq"].shape for i in range(len(ds))}
    assert sizes == {(3, 256, 256), (3, 384, 384)}
    batch = ds.__getitems__(list(range(len(ds))))
    assert [b["hq"].shape for b in batch] == [ds[i]["hq"].shape for i in range(len(ds))]


@pytest.mark.parametrize("workers,context", [(0, None), (2, "fork"), (2, "spawn")])
def test_create_dataloader_batches(golden_extracted, workers, context):
    dst, _ = golden_extracted
    opt = {"mode": "single_image_extensible", "paths": str(dst), "need_ref": True,
           "target_size": 128, "scale": 4, "phase": "train", "batch_size": 8,
           "n_workers": workers}  # fmt: skip
    # As DLAS's train.py calls them: the collate function travels with the dataset.
    ds, collate = dlas_fast.create_dataset(opt, return_collate=True)
    assert collate is dlas_fast.datasets.batch.collate
    loader = dlas_fast.create_dataloader(ds, opt, shuffle=False, collate_fn=collate)
    if context:
        loader = torch.utils.data.DataLoader(ds, batch_size=8, num_workers=workers,
                                             collate_fn=loader.collate_fn,
                                             multiprocessing_context=context)  # fmt: skip
    # Run the loader to the end: dropping it mid-epoch races with torch's worker shutdown
    # (see docs/loading.md).
    batches = list(loader)
    first = batches[0]
    assert first["hq"].shape == (8, 3, 128, 128) and first["lq"].shape == (8, 3, 32, 32)
    expected = len(ds) - len(ds) % 8 if loader.drop_last else len(ds)
    assert sum(len(b["GT_path"]) for b in batches) == expected
    for j in (0, 7):
        assert first["hq"][j].equal(ds[j]["hq"]) and first["GT_path"][j] == ds[j]["GT_path"]


def test_fork_after_the_parent_used_native_threads(golden_extracted):
    # The parent loads a batch on several native threads (and builds an index on a pool);
    # forked workers must not hang on any thread state left behind.
    dst, _ = golden_extracted
    opt = {"mode": "single_image_extensible", "paths": str(dst), "need_ref": True,
           "target_size": 64, "scale": 2}  # fmt: skip
    ds = dlas_fast.create_dataset(opt)
    ds.__getitems__(list(range(16)))
    dlas_fast.ChunkIndex(dst, cache="rebuild")
    loader = torch.utils.data.DataLoader(ds, batch_size=16, num_workers=2, timeout=60,
                                         collate_fn=dlas_fast.datasets.batch.collate,
                                         multiprocessing_context="fork")  # fmt: skip
    assert sum(len(b["GT_path"]) for b in loader) == len(ds)


def test_tiles_too_small_for_the_multiple_name_the_file(tmp_path):
    src = tmp_path / "src"
    save(gradient(600, 600, seed=2), src / "a.png")
    dst = tmp_path / "ds"
    dlas_fast.extract(src, dst, crop_sz=[100], step=[100], resize_final_img=[1], min_size=100)
    opt = {"mode": "single_image_extensible", "paths": str(dst), "scale": 4, "force_multiple": 32,
           "on_error": "raise"}  # fmt: skip
    ds = dlas_fast.create_dataset(opt)
    with pytest.raises(dlas_fast.ImageSizeError, match=r"00000001\.jpg.*force_multiple"):
        ds[0]
    with pytest.raises(dlas_fast.ImageSizeError, match="force_multiple"):
        ds.__getitems__([0, 1])


def test_a_ref_of_another_size_goes_straight_to_the_target(tmp_path):
    # Level-1 tiles of 384 with a 256 ref: DLAS area-resizes the ref directly to target_size.
    src = tmp_path / "src"
    save(gradient(600, 600, seed=1), src / "a.png")
    dst = tmp_path / "ds"
    dlas_fast.extract(src, dst, crop_sz=[256, 512], step=[256, 512], resize_final_img=[1, 0.75])
    opt = {"mode": "single_image_extensible", "paths": str(dst), "need_ref": True, "eval": True}
    raw_ref = dlas_fast.create_dataset(opt)[0]["gt_fullsize_ref"][:3]  # the 256 ref, as is
    ds = dlas_fast.create_dataset(dict(opt, target_size=96))
    last = ds[len(ds) - 1]  # a 384 tile
    expected = cv2.resize(
        raw_ref.numpy().transpose(1, 2, 0), (96, 96), interpolation=cv2.INTER_AREA
    )
    np.testing.assert_allclose(last["gt_fullsize_ref"][:3].numpy(), expected.transpose(2, 0, 1),
                               atol=2e-5)  # fmt: skip


@pytest.mark.parametrize("need_ref", [True, False])
def test_worker_batches_travel_as_one_shared_storage(golden_extracted, need_ref):
    # After a worker's first batch through dlas_fast's collate, its batches are written
    # into one shared-memory storage (a recycled slot: see test_shm_pool.py) and sent
    # as that; the main process gets a plain dict of views with the items' values.
    # Without refs, the all-zero ref tensors are not in shared memory at all: the main
    # process makes them from their shape.
    dst, _ = golden_extracted
    opt = {"mode": "single_image_extensible", "paths": str(dst), "need_ref": need_ref,
           "target_size": 64, "scale": 2}  # fmt: skip
    ds = dlas_fast.create_dataset(opt)
    loader = torch.utils.data.DataLoader(ds, batch_size=4, num_workers=1,
                                         collate_fn=dlas_fast.datasets.batch.collate,
                                         multiprocessing_context="fork")  # fmt: skip
    batches = list(loader)
    assert len(batches) >= 3
    for n, b in enumerate(batches):
        assert type(b) is dict and list(b)[:2] == ["hq", "gt_fullsize_ref"]
        one = b["hq"].untyped_storage().data_ptr() == b["lq"].untyped_storage().data_ptr()
        assert one == (n > 0)
        if n > 0 and not need_ref:
            ref_storage = b["gt_fullsize_ref"].untyped_storage().data_ptr()
            assert ref_storage != b["hq"].untyped_storage().data_ptr()
            assert b["gt_fullsize_ref"].shape == (len(b["GT_path"]), 4, 64, 64)
            assert not b["gt_fullsize_ref"].any() and not b["lq_fullsize_ref"].any()
        for j in range(len(b["GT_path"])):
            item = ds[4 * n + j]
            for key in ("lq", "hq", "gt_fullsize_ref", "lq_fullsize_ref", "gt_center"):
                assert b[key][j].equal(item[key]), key


def test_native_output_arrays_are_checked(golden_extracted):
    dst, _ = golden_extracted
    ds = dlas_fast.create_dataset({"mode": "single_image_extensible", "paths": str(dst),
                                   "target_size": 32, "scale": 1})  # fmt: skip
    items = ds._batch_specs([0, 1])
    keys = ("hq", "gt_fullsize_ref", "lq", "lq_fullsize_ref", "gt_center", "lq_center")

    def arrays(order="C"):
        return [np.zeros((2, c, 32, 32), np.float32, order=order) for c in (3, 4, 3, 4)] + [
            np.zeros((2, 2), np.int64) for _ in range(2)
        ]

    def load(loader, items, out, zeroed):
        given = {k: a for k, a in zip(keys, out) if a is not None}
        loader.load(items, ds.corruptor.native, 0, 1, False, given, zeroed)

    good = arrays()
    load(ds._loader, items, good, True)
    assert np.array_equal(good[0][1], ds[1]["hq"].numpy())
    fortran = arrays("F")
    with pytest.raises(ValueError, match="C-contiguous"):
        load(ds._loader, items, fortran, True)
    no_refs = arrays()
    no_refs[1] = no_refs[3] = None  # ref arrays left out: only for zeroed ref-less items
    load(ds._loader, items, no_refs, True)
    assert np.array_equal(no_refs[0][1], ds[1]["hq"].numpy())
    # Not zeroed (a recycled slot): the centres are written, the ref arrays still absent.
    dirty = arrays()
    dirty[1] = dirty[3] = None
    dirty[4].fill(-7)
    dirty[5].fill(-7)
    load(ds._loader, items, dirty, False)
    assert not dirty[4].any() and not dirty[5].any()
    refs = dlas_fast.create_dataset(dict(ds.opt, need_ref=True))
    with_refs = refs._batch_specs([0, 1])
    assert all(r is not None for r in with_refs["ref"])
    with pytest.raises(ValueError, match="ref output arrays"):
        load(refs._loader, with_refs, no_refs, True)
    one_ref = arrays()
    one_ref[1] = None
    with pytest.raises(ValueError, match="both ref output arrays"):
        load(ds._loader, items, one_ref, True)
    same = arrays()
    same[2] = same[0]  # hq and lq have the same shape here
    with pytest.raises(ValueError, match="distinct"):
        load(ds._loader, items, same, True)


def test_native_output_arrays_may_not_share_memory_or_be_misaligned(golden_extracted):
    """Views of one buffer through different objects (which numpy's borrow tracking
    does not connect) and arrays misaligned for their type are refused before anything
    is written."""
    dst, _ = golden_extracted
    ds = dlas_fast.create_dataset({"mode": "single_image_extensible", "paths": str(dst),
                                   "target_size": 32, "scale": 1})  # fmt: skip
    items = ds._batch_specs([0, 1])
    size = 2 * 3 * 32 * 32

    def out(hq, lq):
        centres = {k: np.zeros((2, 2), np.int64) for k in ("gt_center", "lq_center")}
        return {"hq": hq, "lq": lq, **centres}

    buffer = bytearray(4 * size)
    first = np.frombuffer(buffer, np.float32).reshape(2, 3, 32, 32)
    second = np.frombuffer(buffer, np.float32).reshape(2, 3, 32, 32)
    with pytest.raises(ValueError, match="share memory"):
        ds._loader.load(items, ds.corruptor.native, 0, 1, False, out(first, second), True)
    assert not first.any()
    skewed = np.frombuffer(bytearray(4 * size + 1), np.float32, size, offset=1)
    good = np.zeros((2, 3, 32, 32), np.float32)
    with pytest.raises(ValueError, match="aligned"):
        ds._loader.load(
            items, ds.corruptor.native, 0, 1, False, out(good, skewed.reshape(good.shape)), True
        )


def test_items_keep_dlas_key_order_and_negative_indices(golden_extracted):
    dst, _ = golden_extracted
    ds = dlas_fast.create_dataset({"mode": "single_image_extensible", "paths": str(dst),
                                   "target_size": 32, "scale": 1, "eval": True})  # fmt: skip
    item = ds[-1]
    assert list(item) == ["lq", "hq", "gt_fullsize_ref", "lq_fullsize_ref", "lq_center",
                          "gt_center", "LQ_path", "GT_path"]  # fmt: skip
    last = ds[len(ds) - 1]
    assert item["GT_path"] == last["GT_path"] and item["hq"].equal(last["hq"])


def test_prefault_keeps_contents():
    from dlas_fast._native import prefault

    a = np.arange(1 << 16, dtype=np.float32)
    ok = prefault(a.ctypes.data + 4, a.nbytes - 4)  # an unaligned start is rounded down
    major, minor = (int(x) for x in os.uname().release.split(".")[:2])
    assert ok == ((major, minor) >= (5, 14))
    assert np.array_equal(a, np.arange(1 << 16, dtype=np.float32))


def test_a_folder_without_chunks_is_refused_with_what_to_do(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match=f"no tiles in {empty}") as err:
        dlas_fast.create_dataset({"mode": "single_image_extensible", "paths": str(empty)})
    assert "imagefolder" not in str(err.value)
    photos = tmp_path / "photos"  # photos, not chunk folders of tiles
    save(gradient(64, 48), photos / "a.png")
    with pytest.raises(ValueError, match=f"no tiles in {photos}") as err:
        dlas_fast.create_dataset({"mode": "single_image_extensible", "paths": str(photos)})
    message = str(err.value)
    assert f"dlas-fast extract {photos} DST" in message and "mode: imagefolder" in message
    assert str(photos / "a.png") in message


def test_strict_without_need_ref_is_explained(golden_extracted, caplog):
    dst, _ = golden_extracted
    opt = {"mode": "single_image_extensible", "paths": str(dst), "strict": True,
           "random_seed": 1}  # fmt: skip
    dlas_fast.create_dataset(opt)
    assert "without need_ref: true they have no effect" in caplog.text
    caplog.clear()
    dlas_fast.create_dataset(dict(opt, need_ref=True))
    assert "need_ref" not in caplog.text
