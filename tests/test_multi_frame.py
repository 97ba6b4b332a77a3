"""MultiFrameDataset (docs/spec.md §5) and frame-counter grouping (docs/spec.md §6)."""

from __future__ import annotations

from pathlib import Path

import dlas_fast
import numpy as np
import pytest
import torch
from conftest import gradient, save
from dlas_fast._native import frame_runs

# Frame counters per video; clip_a has a gap after frame 3, clip_c is one frame long.
VIDEOS = {"clip_a_": [1, 2, 3, 5, 6], "clip_b_": [1, 2, 3], "clip_c_": [7]}


@pytest.fixture(scope="module")
def frames_root(tmp_path_factory) -> Path:
    src = tmp_path_factory.mktemp("frames_src")
    for v, (name, counters) in enumerate(VIDEOS.items()):
        for c in counters:
            save(gradient(600, 600, seed=10 * v + c), src / f"{name}{c:012d}.png")
    dst = tmp_path_factory.mktemp("frames_ds") / "ds"
    dlas_fast.extract(src, dst, crop_sz=[256], step=[128], resize_final_img=[1])
    return dst


def opt_of(root: Path, **kw) -> dict:
    return dict({"mode": "multi_frame_extensible", "paths": str(root), "num_frames": 2,
                 "target_size": 64, "scale": 2, "need_ref": True}, **kw)  # fmt: skip


def frame_of(path: str) -> tuple[str, int]:
    chunk = Path(path).parent.name
    return chunk[:-12], int(chunk[-12:])


def test_runs_split_at_gaps_and_never_mix_sources():
    names = ["b000000000002", "a000000000003", "a000000000001", "a000000000002",
             "a000000000005", "b000000000001", "x00000000000y"]  # fmt: skip
    runs = [[names[i] for i in run] for run in frame_runs(names)]
    assert runs == [
        ["a000000000001", "a000000000002", "a000000000003"],
        ["a000000000005"],
        ["b000000000001", "b000000000002"],
        ["x00000000000y"],
    ]


def test_items_are_windows_of_one_source(frames_root):
    ds = dlas_fast.create_dataset(opt_of(frames_root))
    single_opt = dict(opt_of(frames_root), mode="single_image_extensible")
    del single_opt["num_frames"]
    single = dlas_fast.create_dataset(single_opt)
    index = single.tiles.indexes[0]
    tiles = {index.chunk_name(i): index.chunk_len(i) for i in range(index.num_chunks)}
    # Windows of 2: clip_a (1,2) (2,3) (5,6), clip_b (1,2) (2,3); clip_c has none.
    windows = [("clip_a_", 1), ("clip_a_", 2), ("clip_a_", 5), ("clip_b_", 1), ("clip_b_", 2)]
    per_window = [min(tiles[f"{s}{c + k:012d}"] for k in range(2)) for s, c in windows]
    assert len(ds) == sum(per_window)
    paths = single.get_paths()
    item = 0
    for (source, first), count in zip(windows, per_window):
        for offset in range(count):
            out = ds[item]
            assert out["hq"].shape == (2, 3, 64, 64) and out["lq"].shape == (2, 3, 32, 32)
            assert out["gt_fullsize_ref"].shape == (2, 4, 64, 64)
            assert out["lq_fullsize_ref"].shape == (2, 4, 32, 32)
            assert out["gt_center"].shape == (2, 2) and out["gt_center"].dtype == torch.int64
            assert frame_of(out["GT_path"]) == (source, first + 1)  # the last frame
            for k in range(2):  # frame k is tile `offset` of frame first + k
                tile = Path(frames_root, f"{source}{first + k:012d}", f"{offset + 1:08d}.jpg")
                ref = single[paths.index(str(tile))]
                for key in ("hq", "lq", "gt_fullsize_ref", "gt_center"):
                    assert out[key][k].equal(ref[key]), (item, k, key)
            item += 1
    assert ds.get_paths()[3] == ds[3]["GT_path"]
    with pytest.raises(IndexError):
        ds[len(ds)]


def test_sources_shorter_than_num_frames_yield_nothing(frames_root):
    assert len(dlas_fast.create_dataset(opt_of(frames_root, num_frames=4))) == 0
    three = dlas_fast.create_dataset(opt_of(frames_root, num_frames=3))
    assert {frame_of(three[i]["GT_path"]) for i in range(len(three))} == {
        ("clip_a_", 3),
        ("clip_b_", 3),
    }
    with pytest.raises(ValueError, match="num_frames"):
        dlas_fast.create_dataset(opt_of(frames_root, num_frames=0))


def test_frames_of_an_item_share_the_random_corruption(frames_root):
    opt = opt_of(frames_root, random_corruptions=["greyscale", "none"],
                 num_corrupts_per_image=1, random_seed=3)  # fmt: skip
    ds = dlas_fast.create_dataset(opt)
    kinds = []
    for i in range(len(ds)):
        lq = ds[i]["lq"]
        grey = [bool((f[0] == f[1]).all() and (f[1] == f[2]).all()) for f in lq]
        assert len(set(grey)) == 1, i  # all frames or none
        kinds.append(grey[0])
    assert set(kinds) == {True, False}


@pytest.mark.parametrize("context", ["fork", "spawn"])
def test_batches_and_workers_give_the_items(frames_root, context):
    opt = opt_of(frames_root, fixed_corruptions=["jpeg", "gaussian_blur"], random_seed=5,
                 corrupt_before_downsize=True)  # fmt: skip
    ds = dlas_fast.create_dataset(opt)
    collate = dlas_fast.datasets.batch.collate
    loader = torch.utils.data.DataLoader(ds, batch_size=3, num_workers=2, collate_fn=collate,
                                         multiprocessing_context=context)  # fmt: skip
    seen = 0
    for batch in loader:
        n = len(batch["GT_path"])
        assert batch["hq"].shape == (n, 2, 3, 64, 64) and batch["lq_center"].shape == (n, 2, 2)
        for j in range(n):
            item = ds[seen + j]
            for key in ("lq", "hq", "gt_fullsize_ref", "lq_fullsize_ref", "lq_center"):
                assert batch[key][j].equal(item[key]), (seen + j, key)
            assert batch["GT_path"][j] == item["GT_path"]
        seen += n
    assert seen == len(ds)
    default = torch.utils.data.default_collate(ds.__getitems__([0, 4]))
    assert default["lq"][1].equal(ds[4]["lq"])


def test_weights_repeat_and_ignore_first_drops_tiles(frames_root):
    base = dlas_fast.create_dataset(opt_of(frames_root))
    twice = dlas_fast.create_dataset(opt_of(frames_root, paths=[str(frames_root)] * 2,
                                            weights=[1, 1]))  # fmt: skip
    assert len(twice) == 2 * len(base)
    assert np.array_equal(twice[len(base)]["hq"].numpy(), base[0]["hq"].numpy())
    skip = dlas_fast.create_dataset(opt_of(frames_root, ignore_first=2))
    assert len(skip) == len(base) - 2 * 5  # 5 windows, 2 tiles fewer each
    assert Path(skip[0]["GT_path"]).name == "00000003.jpg"
