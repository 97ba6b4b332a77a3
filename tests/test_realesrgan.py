"""Real-ESRGAN's degradation (docs/degradations.md): options, determinism, the
datasets that use it, and fidelity to the reference (BasicSR / Real-ESRGAN) through
the committed golden files of tests/golden/realesrgan."""

from __future__ import annotations

from pathlib import Path

import dlas_fast
import numpy as np
import pytest
from conftest import gradient, save
from dlas_fast.corruptor import REALESRGAN_OPTIONS, ImageCorruptor

GOLDEN = Path(__file__).parent / "golden" / "realesrgan"


def degrader(**opt) -> ImageCorruptor:
    return ImageCorruptor(dict({"degradation": "realesrgan", "random_seed": 7}, **opt))


def texture(h: int, w: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    base = 0.5 + 0.3 * np.sin(x / 5.0)[..., None] * np.cos(y / 7.0)[..., None]
    img = base + 0.15 * rng.random((h, w, 3), dtype=np.float32)
    img[:, w // 2 :, 1] *= 0.5  # an edge
    return np.clip(img, 0, 1).astype(np.float32)


# --- options --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("blur_kernel_size", 20),
        ("blur_kernel_size", 1),
        ("blur_kernel_size2", 4),
        ("kernel_prob", [0.5, 0.2, 0.1, 0.1, 0.05, 0.0]),
        ("kernel_prob2", [0.5, 0.5]),
        ("resize_prob", [0.5, 0.6, 0.1]),
        ("resize_prob2", [1.0]),
        ("noise_range", [30, 1]),
        ("blur_sigma2", []),
        ("jpeg_range", [0, 95]),
        ("jpeg_range2", [50, 101]),
        ("poisson_scale_range", [2, 1]),
        ("betag_range", [2, 4]),
        ("sinc_prob", 1.5),
        ("final_sinc_prob", -0.1),
        ("second_blur_prob", "often"),
        ("kernel_list", ["iso", "box", "aniso", "generalized_iso", "plateau_iso", "sinc"]),
        ("resize_range", [0.15, 1000]),
    ],
)
def test_bad_options_are_value_errors_naming_the_option(option, value):
    with pytest.raises(ValueError, match=option):
        degrader(**{option: value})


def test_unknown_degradation_and_mixing_with_corruptions_are_named():
    with pytest.raises(ValueError, match="degradation"):
        ImageCorruptor({"degradation": "bsrgan"})
    with pytest.raises(ValueError, match="fixed_corruptions"):
        ImageCorruptor({"degradation": "realesrgan", "fixed_corruptions": ["jpeg"]})


def test_every_yaml_option_is_known_and_the_x4plus_yaml_is_accepted():
    x4plus = {
        "blur_kernel_size": 21,
        "kernel_list": ["iso", "aniso", "generalized_iso", "generalized_aniso",
                        "plateau_iso", "plateau_aniso"],
        "kernel_prob": [0.45, 0.25, 0.12, 0.03, 0.12, 0.03],
        "sinc_prob": 0.1, "blur_sigma": [0.2, 3], "betag_range": [0.5, 4],
        "betap_range": [1, 2], "blur_kernel_size2": 21,
        "kernel_list2": ["iso", "aniso", "generalized_iso", "generalized_aniso",
                         "plateau_iso", "plateau_aniso"],
        "kernel_prob2": [0.45, 0.25, 0.12, 0.03, 0.12, 0.03],
        "sinc_prob2": 0.1, "blur_sigma2": [0.2, 1.5], "betag_range2": [0.5, 4],
        "betap_range2": [1, 2], "final_sinc_prob": 0.8,
        "resize_prob": [0.2, 0.7, 0.1], "resize_range": [0.15, 1.5],
        "gaussian_noise_prob": 0.5, "noise_range": [1, 30],
        "poisson_scale_range": [0.05, 3], "gray_noise_prob": 0.4, "jpeg_range": [30, 95],
        "second_blur_prob": 0.8, "resize_prob2": [0.3, 0.4, 0.3],
        "resize_range2": [0.3, 1.2], "gaussian_noise_prob2": 0.5, "noise_range2": [1, 25],
        "poisson_scale_range2": [0.05, 2.5], "gray_noise_prob2": 0.4,
        "jpeg_range2": [30, 95],
    }  # fmt: skip
    assert set(x4plus) <= REALESRGAN_OPTIONS
    gt = texture(64, 64)
    # The YAML's values are the defaults: the same draws and pixels as no options.
    a, _ = degrader(**x4plus).degrade(gt, 4, index=3)
    b, _ = degrader().degrade(gt, 4, index=3)
    np.testing.assert_array_equal(a, b)


# --- the pipeline ---------------------------------------------------------------------


def test_lq_size_steps_and_keys():
    d = degrader(gt_usm=True)
    gt = texture(96, 80)
    lq, usm = d.degrade(gt, 4, index=0)
    assert lq.shape == (24, 20, 3) and lq.dtype == np.float32
    assert usm.shape == gt.shape
    np.testing.assert_allclose(lq * 255, np.round(lq * 255), atol=1e-4)
    assert 0 <= lq.min() and lq.max() <= 1
    again, _ = degrader().degrade(gt, 4, index=0)
    np.testing.assert_array_equal(lq, again)  # gt_usm changes no LQ pixel
    other, _ = d.degrade(gt, 4, index=1)
    assert not np.array_equal(lq, other)
    later, _ = d.degrade(gt, 4, index=0, epoch=1)
    assert not np.array_equal(lq, later)
    assert degrader().degrade(gt, 4, index=0)[1] is None


def test_draws_are_those_used_and_differ_per_item():
    d = degrader()
    a, b = d.draws(index=0), d.draws(index=1)
    assert repr(a) == repr(d.draws(index=0))  # NaN-safe equality
    assert repr(a) != repr(b)
    assert set(a) >= {"kernel1", "kernel2", "final_sinc", "resize1", "resize2", "noise1",
                      "noise2", "jpeg1", "jpeg2", "second_blur", "resize_first"}  # fmt: skip


def test_corrupt_images_degrades_at_the_same_size():
    d = degrader()
    gt = texture(48, 40)
    (out,) = d.corrupt_images([gt], index=2)
    assert out.shape == gt.shape
    assert not np.array_equal(out, gt)


# --- datasets -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("re_photos")
    for i in range(4):
        save(gradient(120, 100, seed=i), root / f"p{i}.png")
    return root


def test_image_folder_makes_its_lq_with_the_degradation(photos):
    opt = {"mode": "imagefolder", "paths": str(photos), "target_size": 64, "scale": 4,
           "disable_flip": True, "random_seed": 5}  # fmt: skip
    plain = dlas_fast.create_dataset(opt)
    deg = dlas_fast.create_dataset(dict(opt, degradation="realesrgan"))
    for i in range(len(plain)):
        p, d = plain[i], deg[i]
        np.testing.assert_array_equal(p["hq"], d["hq"])
        assert tuple(d["lq"].shape) == (3, 16, 16)
        lq = d["lq"].numpy()
        np.testing.assert_allclose(lq * 255, np.round(lq * 255), atol=1e-4)
        assert not np.array_equal(lq, p["lq"].numpy())
    # The same item twice: the same pixels.
    np.testing.assert_array_equal(deg[1]["lq"], deg[1]["lq"])
    # The native LQ is the degradation of the item's HQ image, keyed on its index.
    hq = deg[2]["hq"].numpy().transpose(1, 2, 0)
    alone = degrader(random_seed=5)
    lq, _ = alone.degrade(hq, 4, index=2)
    np.testing.assert_allclose(deg[2]["lq"].numpy().transpose(1, 2, 0), lq, atol=1e-6)


def test_datasets_reject_what_they_cannot_do(photos):
    opt = {"mode": "imagefolder", "paths": str(photos), "target_size": 64, "scale": 4,
           "degradation": "realesrgan"}  # fmt: skip
    with pytest.raises(ValueError, match="gt_usm"):
        dlas_fast.create_dataset(dict(opt, gt_usm=True))
    with pytest.raises(ValueError, match="noise_range2"):
        dlas_fast.create_dataset(dict(opt, noise_range2=[5]))


NO_NOISE = {"gaussian_noise_prob": 1.0, "gaussian_noise_prob2": 1.0,
            "noise_range": [0, 0], "noise_range2": [0, 0]}  # fmt: skip


def test_images_of_one_call_share_one_draw():
    d = degrader(**NO_NOISE)
    gt = texture(64, 64, seed=3)
    a, b = d.corrupt_images([gt, gt], index=4)
    np.testing.assert_array_equal(a, b)
    (c,) = d.corrupt_images([gt], index=5)
    assert not np.array_equal(a, c)
    # With noise, each image of the call has its own.
    a, b = degrader().corrupt_images([gt, gt], index=4)
    assert not np.array_equal(a, b)


@pytest.fixture(scope="module")
def still_clip(tmp_path_factory) -> Path:
    """A chunked dataset of a clip whose three frames are the same picture."""
    src = tmp_path_factory.mktemp("still_src")
    for c in (1, 2, 3):
        save(gradient(600, 600, seed=4), src / f"still_{c:012d}.png")
    dst = tmp_path_factory.mktemp("still_ds") / "ds"
    dlas_fast.extract(src, dst, crop_sz=[256], step=[256], resize_final_img=[1])
    return dst


def test_frames_of_a_multi_frame_item_share_one_draw(still_clip):
    opt = {"mode": "multi_frame_extensible", "paths": str(still_clip), "num_frames": 2,
           "target_size": 64, "scale": 4, "random_seed": 1, "degradation": "realesrgan",
           **NO_NOISE}  # fmt: skip
    ds = dlas_fast.create_dataset(opt)
    assert len(ds) > 1
    lqs = []
    for i in range(len(ds)):
        lq = ds[i]["lq"].numpy()
        assert lq.shape == (2, 3, 16, 16)
        np.testing.assert_array_equal(lq[0], lq[1])  # the same picture, the same draw
        lqs.append(lq[0])
    assert any(not np.array_equal(lqs[0], x) for x in lqs[1:])


def test_single_image_tiles_get_degraded_lq(still_clip):
    opt = {"mode": "single_image_extensible", "paths": str(still_clip),
           "target_size": 64, "scale": 2, "random_seed": 1,
           "degradation": "realesrgan"}  # fmt: skip
    ds = dlas_fast.create_dataset(opt)
    plain = dlas_fast.create_dataset({k: v for k, v in opt.items() if k != "degradation"})
    item = ds[0]
    assert tuple(item["lq"].shape) == (3, 32, 32)
    np.testing.assert_array_equal(item["hq"], plain[0]["hq"])
    assert not np.array_equal(item["lq"], plain[0]["lq"])
    # Eval mode degrades nothing: the LQ image is the plain one.
    evaluated = dlas_fast.create_dataset(dict(opt, eval=True))
    plain_eval = dlas_fast.create_dataset(
        {k: v for k, v in opt.items() if k != "degradation"} | {"eval": True}
    )
    np.testing.assert_array_equal(evaluated[0]["lq"], plain_eval[0]["lq"])


X4PLUS_YAML = """
name: train_RealESRGANx4plus
model_type: RealESRGANModel
scale: 4
l1_gt_usm: True
resize_prob: [0.2, 0.7, 0.1]
resize_range: [0.15, 1.5]
gaussian_noise_prob: 1.0
noise_range: [1, 2]
poisson_scale_range: [0.05, 3]
gray_noise_prob: 0.4
jpeg_range: [30, 95]
second_blur_prob: 0.8
resize_prob2: [0.3, 0.4, 0.3]
resize_range2: [0.3, 1.2]
gaussian_noise_prob2: 0.5
noise_range2: [1, 25]
poisson_scale_range2: [0.05, 2.5]
gray_noise_prob2: 0.4
jpeg_range2: [30, 95]
gt_size: 256
queue_size: 180
datasets:
  train:
    name: DF2K+OST
    type: imagefolder
    dataroot_gt: {root}
    meta_info: {root}/meta_info.txt
    io_backend:
      type: disk
    blur_kernel_size: 21
    kernel_list: ['iso', 'aniso', 'generalized_iso', 'generalized_aniso', 'plateau_iso', 'plateau_aniso']
    kernel_prob: [0.45, 0.25, 0.12, 0.03, 0.12, 0.03]
    sinc_prob: 0.1
    blur_sigma: [0.2, 3]
    betag_range: [0.5, 4]
    betap_range: [1, 2]
    blur_kernel_size2: 21
    kernel_list2: ['iso', 'aniso', 'generalized_iso', 'generalized_aniso', 'plateau_iso', 'plateau_aniso']
    kernel_prob2: [0.45, 0.25, 0.12, 0.03, 0.12, 0.03]
    sinc_prob2: 0.1
    blur_sigma2: [0.2, 1.5]
    betag_range2: [0.5, 4]
    betap_range2: [1, 2]
    final_sinc_prob: 0.8
    gt_size: 64
    use_hflip: True
    use_rot: False
    use_shuffle: true
    num_worker_per_gpu: 0
    batch_size_per_gpu: 2
    dataset_enlarge_ratio: 1
    prefetch_mode: ~
"""  # noqa: E501


def test_a_realesrgan_yaml_works_once_its_type_is_ours(photos, tmp_path):
    from dlas_fast.config import dataset_options

    cfg = tmp_path / "train_realesrgan_x4plus.yml"
    cfg.write_text(X4PLUS_YAML.format(root=photos))
    opt = dataset_options(cfg, "train")
    assert opt["mode"] == "imagefolder" and opt["degradation"] == "realesrgan"
    assert (opt["paths"], opt["target_size"], opt["scale"]) == (str(photos), 64, 4)
    with pytest.warns(UserWarning, match="meta_info"):
        ds = dlas_fast.create_dataset(opt)
    item = ds[0]
    assert tuple(item["hq"].shape) == (3, 64, 64) and tuple(item["lq"].shape) == (3, 16, 16)
    # The top-level settings reached the degradation: every first noise is Gaussian,
    # with sigma in [1, 2].
    for i in range(20):
        n = ds.corruptor.draws(index=i)["noise1"]
        assert n["gaussian"] and 1 <= n["sigma"] <= 2
    loader = dlas_fast.create_dataloader(ds, opt)
    batch = next(iter(loader))
    assert tuple(batch["lq"].shape) == (2, 3, 16, 16)
