"""MultiScaleDataset and its patch tree (docs/spec.md §5 ``multiscale``)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import dlas_fast
import numpy as np
import pytest
import torch
from conftest import gradient, save
from dlas_fast.datasets.batch import collate

GOLDEN = json.loads((Path(__file__).parent / "data" / "multiscale_index_map.json").read_text())


@pytest.mark.parametrize("depth", sorted(GOLDEN["depths"]))
def test_index_map_matches_dlas(depth):
    leaves = dlas_fast.build_multiscale_patch_index_map(int(depth))
    chains = []
    for leaf in leaves:
        chain, node = [], leaf
        while node is not None:
            chain.append({"index": node.index, "left": node.left, "top": node.top})
            node = node.parent
        chains.append(chain)
    assert chains == GOLDEN["depths"][depth]
    root = leaves[0]
    while root.parent is not None:
        root = root.parent
    assert [c.index for c in root.children] == [1, 2, 3, 4]


def test_index_map_edges():
    (root,) = dlas_fast.build_multiscale_patch_index_map(1)
    assert root.index == 0 and root.parent is None
    assert dlas_fast.build_multiscale_patch_index_map(0) == []
    with pytest.raises(ValueError, match="depth"):
        dlas_fast.build_multiscale_patch_index_map(-1)


def dlas_tree(full: np.ndarray, t: int, n: int) -> list[np.ndarray]:
    """DLAS's recursively_extract_patches, with OpenCV, from the full resized image."""
    out = [cv2.resize(full, (t, t), interpolation=cv2.INTER_AREA)]
    cap = t * 2**n

    def rec(img, depth):
        if depth >= n:
            return
        s = cap // 2**depth
        quads = [img[:s, :s], img[:s, s:], img[s:, :s], img[s:, s:]]
        out.extend(cv2.resize(np.ascontiguousarray(q), (t, t), interpolation=cv2.INTER_AREA)
                   for q in quads)  # fmt: skip
        for q in quads:
            rec(q, depth + 1)

    rec(full, 1)
    return out


def orientations(img: np.ndarray):
    for h in (False, True):
        for v in (False, True):
            for r in (False, True):
                x = img[:, ::-1] if h else img
                x = x[::-1] if v else x
                yield (h, v, r), (x.transpose(1, 0, 2) if r else x)


def find_reference(path: Path, hq0: np.ndarray, t: int, n: int):
    """The (orientation, crop offset) whose DLAS pipeline gives this root patch."""
    img = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB).astype(np.float32) / 255
    cap = t * 2**n
    best = None
    for o, x in orientations(img):
        h, w = x.shape[:2]
        d = min(h, w)
        for off in range(max(h, w) - d + 1):
            sq = x[off : off + d] if h > w else x[:, off : off + d]
            full = cv2.resize(np.ascontiguousarray(sq), (cap, cap), interpolation=cv2.INTER_AREA)
            err = np.abs(cv2.resize(full, (t, t), interpolation=cv2.INTER_AREA) - hq0).max()
            if best is None or err < best[0]:
                best = (err, o, off, full)
    return best


@pytest.fixture()
def photos(tmp_path: Path) -> Path:
    root = tmp_path / "ms"
    save(gradient(48, 48, seed=1), root / "b" / "square.png")
    save(gradient(56, 44, seed=2), root / "wide.png")
    save(gradient(40, 52, seed=3), root / "a.png")
    return root


def make(root, **kw):
    opt = {"mode": "multiscale", "paths": [str(root)], "hq_tile_size": 8, "num_scales": 3,
           "scale": 2}  # fmt: skip
    opt.update(kw)
    return dlas_fast.create_dataset(opt)


def test_patches_match_dlas_tree(photos):
    ds = make(photos, random_seed=1)
    assert len(ds) == 3
    seen = set()
    for epoch in range(6):
        ds.set_epoch(epoch)
        for i in range(len(ds)):
            out = ds[i]
            assert list(out) == ["lq", "hq", "GT_path"]  # DLAS's order
            hq = out["hq"].numpy().transpose(0, 2, 3, 1)
            assert out["hq"].shape == (21, 3, 8, 8) and out["lq"].shape == (21, 3, 4, 4)
            assert out["hq"].dtype == torch.float32
            err, o, off, full = find_reference(Path(out["GT_path"]), hq[0], 8, 3)
            assert err < 1e-5, (i, err)
            seen.add(o)
            ref = dlas_tree(full, 8, 3)
            np.testing.assert_allclose(hq, np.stack(ref), atol=1e-5)
            # No corruption: LQ = each HQ patch area-shrunk by scale.
            lq = np.stack([cv2.resize(p, (4, 4), interpolation=cv2.INTER_AREA) for p in ref])
            np.testing.assert_allclose(out["lq"].numpy().transpose(0, 2, 3, 1), lq, atol=1e-5)
    assert len(seen) >= 5  # flips and transposes are drawn


def test_crop_offset_is_centred_normal(tmp_path):
    root = tmp_path / "tall"
    save(gradient(16, 80, seed=4), root / "tall.png")
    ds = make(root, hq_tile_size=4, num_scales=2, scale=1, random_seed=2)
    offsets = []
    for epoch in range(40):
        ds.set_epoch(epoch)
        hq0 = ds[0]["hq"][0].numpy().transpose(1, 2, 0)
        err, o, off, _ = find_reference(root / "tall.png", hq0, 4, 2)
        assert err < 1e-5
        offsets.append(off)
    assert all(0 <= o <= 64 for o in offsets)
    assert 24 < np.mean(offsets) < 40  # centred on 32, spread by 0.3 * 30
    assert len(set(offsets)) > 5


def test_corruption_runs_once_on_the_full_image(photos):
    ds = make(photos, random_corruptions=["greyscale"], num_corrupts_per_image=1)
    out = ds[0]
    lq = out["lq"]
    assert torch.equal(lq[:, 0], lq[:, 1]) and torch.equal(lq[:, 1], lq[:, 2])
    assert not torch.equal(out["hq"][:, 0], out["hq"][:, 1])


def test_paths_are_sorted_across_roots_and_batches_agree(photos, tmp_path):
    other = tmp_path / "ms2"
    save(gradient(24, 24), other / "c.png")
    ds = make(photos, paths=[str(other), str(photos)], random_seed=3,
              fixed_corruptions=["jpeg"])  # fmt: skip
    assert ds.get_paths() == sorted(ds.get_paths())
    assert os.path.basename(ds.get_paths()[0]) == "a.png"
    batch = collate(ds.__getitems__([0, 1, 2, 3]))
    assert batch["hq"].shape == (4, 21, 3, 8, 8)
    for j in range(4):
        item = ds[j]
        assert torch.equal(batch["hq"][j], item["hq"]) and torch.equal(batch["lq"][j], item["lq"])
        assert batch["GT_path"][j] == item["GT_path"]
    loader = dlas_fast.create_dataloader(
        ds, {"phase": "train", "batch_size": 2, "n_workers": 2, "pin_memory": False},
        shuffle=False,
    )  # fmt: skip
    got = [b for b in loader]
    assert torch.equal(torch.cat([b["hq"] for b in got]), batch["hq"])


def test_bad_options_are_named(photos):
    with pytest.raises(ValueError, match="scale"):
        make(photos, scale=3)
    with pytest.raises(ValueError, match="num_scales"):
        make(photos, num_scales=0)
    with pytest.raises(ValueError, match="hq_tile_size"):
        make(photos, hq_tile_size=2**60, num_scales=4, scale=1)  # t * 2^n overflows
    with pytest.raises(ValueError, match="num_scales"):
        make(photos, hq_tile_size=4096, num_scales=2, scale=1)  # t * 2^n over 8192
    with pytest.raises(ValueError, match="hq_tile_size"):
        make(photos, hq_tile_size=None)
    empty = photos.parent / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="no images"):
        make(empty)


def test_reduced_decoding_is_close_to_a_full_decode(tmp_path):
    # Squares 4x the 64-pixel cap or more (reduced by 2 and by 4): JPEGs are decoded
    # reduced, in every orientation and crop offset; a wrong flip, transpose or
    # window would fall far below 40 dB.
    root = tmp_path / "big"
    save(gradient(300, 260, seed=1), root / "a_wide.jpg", quality=92)
    save(gradient(520, 900, seed=2), root / "b_tall.jpg", quality=92, subsampling=0)
    opt = {"hq_tile_size": 8, "num_scales": 3, "random_seed": 4}
    reduced, exact = make(root, **opt), make(root, exact_decode=True, **opt)
    for epoch in range(4):
        reduced.set_epoch(epoch)
        exact.set_epoch(epoch)
        for i in range(len(reduced)):
            r, e = reduced[i], exact[i]
            assert r["hq"].shape == e["hq"].shape == (21, 3, 8, 8)
            mse = float(((r["hq"] - e["hq"]) ** 2).mean())
            assert 0 < mse and 10 * np.log10(1 / mse) >= 40, (i, epoch, mse)
            if i == 0:
                # exact_decode gives DLAS's pipeline.
                hq0 = e["hq"].numpy().transpose(0, 2, 3, 1)[0]
                err, *_ = find_reference(Path(e["GT_path"]), hq0, 8, 3)
                assert err < 1e-5
