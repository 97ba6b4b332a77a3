"""FullImageDataset (docs/spec.md §5 ``fullimage``)."""

from __future__ import annotations

from pathlib import Path

import dlas_fast
import numpy as np
import pytest
import torch
from conftest import gradient, save
from PIL import Image


@pytest.fixture()
def photos(tmp_path: Path) -> Path:
    root = tmp_path / "full"
    save(gradient(96, 80, seed=1), root / "a.png")
    save(gradient(70, 100, seed=2), root / "sub" / "b.png")
    return root


def make(root, **kw):
    opt = {"mode": "fullimage", "dataroot_GT": [str(root)], "dataroot_GT_weights": [1],
           "phase": "train", "min_tile_size": 48, "target_size": 32, "scale": 2}  # fmt: skip
    opt.update(kw)
    return dlas_fast.create_dataset(opt)


def test_train_items_have_the_tile_its_reference_and_mask(photos):
    ds = make(photos, use_flip=True, use_rot=True, use_blurring=True, random_seed=1)
    assert len(ds) == 2
    for epoch in range(5):
        ds.set_epoch(epoch)
        for i in range(2):
            out = ds[i]
            assert out["hq"].shape == (3, 32, 32) and out["lq"].shape == (3, 16, 16)
            assert out["gt_fullsize_ref"].shape == (4, 32, 32)
            assert out["lq_fullsize_ref"].shape == (4, 16, 16)
            for k in ("lq", "hq", "gt_fullsize_ref", "lq_fullsize_ref"):
                assert out[k].dtype == torch.float32
            for k in ("gt_center", "lq_center"):
                assert out[k].dtype == torch.int64 and out[k].shape == (2,)
            mask = out["gt_fullsize_ref"][3]
            assert mask.max() == 1 and mask.min() >= 0
            # The centre lies inside the tile's mask.
            r, c = out["gt_center"].tolist()
            assert mask[min(r, 31), min(c, 31)] > 0.5
            assert out["HQ_path"] == out["GT_path"] == out["LQ_path"] == ds.get_paths()[i]
    again = make(photos, use_flip=True, use_rot=True, use_blurring=True, random_seed=1)
    again.set_epoch(4)
    assert torch.equal(again[1]["lq"], ds[1]["lq"])


def test_a_whole_image_tile_is_the_image_and_lq_is_matlab_bicubic(tmp_path):
    img = gradient(64, 64, seed=3)
    save(img, tmp_path / "sq" / "x.png")
    ds = make(tmp_path / "sq", min_tile_size=64, target_size=64, fixed_size=True)
    out = ds[0]
    np.testing.assert_allclose(out["hq"].numpy(), img.transpose(2, 0, 1) / 255, atol=1e-6)
    assert torch.equal(out["gt_fullsize_ref"][3], torch.ones(64, 64))
    assert out["gt_center"].tolist() == [32, 32]
    # MATLAB's bicubic halving is close to PIL's antialiased bicubic inside the image.
    pil = np.asarray(Image.fromarray(img).resize((32, 32), Image.BICUBIC), np.float32) / 255
    lq = out["lq"].numpy().transpose(1, 2, 0)
    assert np.abs(lq[2:-2, 2:-2] - pil[2:-2, 2:-2]).max() < 3 / 255


def test_eval_phase_returns_whole_images(photos):
    ds = make(photos, phase="val", min_tile_size=None, target_size=None, force_multiple=4)
    out = ds[0]  # 96 x 80 -> LQ 48 x 40, multiples of 4 already
    assert out["hq"].shape == (3, 80, 96) and out["lq"].shape == (3, 40, 48)
    assert torch.equal(out["gt_fullsize_ref"][3], torch.ones(80, 96))
    assert out["gt_center"].tolist() == [40, 48] and out["lq_center"].tolist() == [20, 24]
    odd = ds[1]  # 70 x 100 -> LQ 35 x 50 -> cut to 32 x 48, HQ to 64 x 96
    assert odd["lq"].shape == (3, 48, 32) and odd["hq"].shape == (3, 96, 64)


def test_lq_folder_tiles_line_up_with_hq(tmp_path):
    img = gradient(128, 96, seed=5)
    save(img, tmp_path / "hq" / "p.png")
    small = np.asarray(Image.fromarray(img).resize((64, 48), Image.BOX))
    save(small, tmp_path / "lq" / "p.png")
    ds = make(tmp_path / "hq", dataroot_LQ=str(tmp_path / "lq"), use_flip=True, use_rot=True,
              random_seed=2)  # fmt: skip
    for epoch in range(4):
        ds.set_epoch(epoch)
        out = ds[0]
        assert out["LQ_path"].endswith("lq/p.png")
        hq_small = torch.nn.functional.avg_pool2d(out["hq"][None], 2)[0]
        assert (hq_small - out["lq"]).abs().mean() < 0.03, epoch


def test_the_lq_folder_choice_is_keyed_on_seed_epoch_and_index(tmp_path):
    for i in range(6):
        save(gradient(64, 64, seed=i), tmp_path / "hq" / f"p{i}.png")
        for lq in ("lq1", "lq2"):
            save(gradient(32, 32, seed=i), tmp_path / lq / f"p{i}.png")
    lqs = [str(tmp_path / "lq1"), str(tmp_path / "lq2")]

    def chosen(seed, epoch):
        ds = make(tmp_path / "hq", dataroot_LQ=lqs, min_tile_size=32, random_seed=seed)
        ds.set_epoch(epoch)
        return [Path(ds[i]["LQ_path"]).parent.name for i in range(6)]

    first = chosen(4, 0)
    assert first == chosen(4, 0)  # reproducible
    assert set(first) | set(chosen(4, 1)) == {"lq1", "lq2"}  # both folders are used
    assert any(chosen(4, e) != first for e in range(1, 4))  # and redrawn each epoch


def test_lq_noise_and_errors(photos):
    plain = make(photos, random_seed=3)[0]["lq"]
    noisy = make(photos, random_seed=3, lq_noise=5)[0]
    diff = noisy["lq"] - plain
    assert 1 / 255 < diff.std() < 10 / 255
    with pytest.raises(dlas_fast.ImageSizeError, match=r"b\.png.*smaller than min_tile_size"):
        make(photos, min_tile_size=90, on_error="raise")[1]
    with pytest.raises(ValueError, match="target_size"):
        make(photos, target_size=None)
    (photos / "empty").mkdir()
    with pytest.raises(ValueError, match="no images"):
        make(photos / "empty")


def imresize_np(img: np.ndarray, scale: float) -> np.ndarray:
    """BasicSR's / DLAS's MATLAB-style bicubic imresize, in numpy (HWC float)."""

    def cubic(x):
        a = np.abs(x)
        return (1.5 * a**3 - 2.5 * a**2 + 1) * (a <= 1) + (-0.5 * a**3 + 2.5 * a**2 - 4 * a + 2) * (
            (a > 1) & (a <= 2)
        )

    def axis(n_in):
        n_out = int(np.ceil(n_in * scale))
        x = np.arange(1, n_out + 1)
        u = x / scale + 0.5 * (1 - 1 / scale)
        width = 4 / scale if scale < 1 else 4.0
        left = np.floor(u - width / 2)
        p = int(np.ceil(width)) + 2
        idx = left[:, None] + np.arange(p)[None]
        w = scale * cubic((u[:, None] - idx) * scale) if scale < 1 else cubic(u[:, None] - idx)
        w = w / w.sum(1, keepdims=True)
        idx = idx.astype(int) - 1
        idx = np.where(idx < 0, -idx - 1, idx)
        idx = np.where(idx >= n_in, 2 * n_in - 1 - idx, idx)
        return idx, w

    ih, wh = axis(img.shape[0])
    out = (img[ih] * wh[:, :, None, None]).sum(1)
    iw, ww = axis(img.shape[1])
    return (out[:, iw] * ww[None, :, :, None]).sum(2)


def test_eval_lq_is_matlab_imresize_for_any_size(tmp_path):
    img = gradient(13, 15, seed=6)
    save(img, tmp_path / "odd" / "x.png")
    ds = make(tmp_path / "odd", phase="val", min_tile_size=None, target_size=None)
    out = ds[-1]  # negative indices count from the end
    want = imresize_np(img.astype(np.float64) / 255, 0.5)
    assert out["lq"].shape == (3, 8, 7)
    np.testing.assert_allclose(out["lq"].numpy().transpose(1, 2, 0), want, atol=1e-5)


def test_fixed_tiles_are_exact_crops_and_tiny_lq_is_an_error(tmp_path):
    img = gradient(22, 22, seed=7)
    save(img, tmp_path / "t" / "x.png")
    ds = make(tmp_path / "t", min_tile_size=15, target_size=15, scale=1, fixed_size=True,
              random_seed=1)  # fmt: skip
    for epoch in range(4):
        ds.set_epoch(epoch)
        hq = ds[0]["hq"].numpy().transpose(1, 2, 0)
        found = [(t, c) for t in range(8) for c in range(8)
                 if np.allclose(hq, img[t : t + 15, c : c + 15] / 255, atol=1e-6)]  # fmt: skip
        assert len(found) == 1, epoch
    with pytest.raises(dlas_fast.ImageSizeError, match="force_multiple"):
        make(tmp_path / "t", min_tile_size=16, target_size=16, force_multiple=32,
             on_error="raise")[0]  # fmt: skip
