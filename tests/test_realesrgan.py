"""Real-ESRGAN's degradation (docs/degradations.md): options, determinism, the
datasets that use it, and fidelity to the reference (BasicSR / Real-ESRGAN) through
the committed golden files of tests/golden/realesrgan."""

from __future__ import annotations

from pathlib import Path

import dlas_fast
import numpy as np
import pytest
import torch
from conftest import gradient, save
from dlas_fast._native import realesrgan_kernel, realesrgan_poisson_vals, realesrgan_stage
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
        ("jpeg_range", [50, 100]),
        ("blur_sigma", [1e-200, 1e-200]),
        ("noise_range2", [float("nan"), 3]),
    ],
)
def test_bad_options_are_value_errors_naming_the_option(option, value):
    with pytest.raises(ValueError, match=option):
        degrader(**{option: value})


def test_one_kernel_name_and_bad_scales():
    d = degrader(kernel_list="aniso", kernel_prob=[1.0])
    assert d.draws(index=0)["kernel1"]["kind"] in ("aniso", None)  # None: a sinc
    with pytest.raises(ValueError, match="scale"):
        d.degrade(texture(32, 32), 2.5, index=0)
    x = np.ascontiguousarray(texture(16, 16).transpose(2, 0, 1))
    with pytest.raises(ValueError, match="quality"):
        realesrgan_stage("jpeg", x, quality=100.0)
    with pytest.raises(ValueError, match="size"):
        realesrgan_stage("interpolate", x, mode="bilinear", size=(10**6, 10**6))


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


def test_datasets_return_the_sharpened_hq_with_gt_usm(photos):
    opt = {"mode": "imagefolder", "paths": str(photos), "target_size": 64, "scale": 4,
           "disable_flip": True, "random_seed": 5, "degradation": "realesrgan",
           "fetch_alt_image": True}  # fmt: skip
    plain = dlas_fast.create_dataset(opt)
    ds = dlas_fast.create_dataset(dict(opt, gt_usm=True))
    assert "hq_usm" not in plain[0]
    for i in range(len(ds)):
        item = ds[i]
        want = realesrgan_stage("usm", np.ascontiguousarray(item["hq"].numpy()))
        np.testing.assert_allclose(item["hq_usm"].numpy(), want, atol=1e-6)
        # Asking for it changes no LQ pixel.
        np.testing.assert_array_equal(item["lq"], plain[i]["lq"])
        np.testing.assert_array_equal(item["alt_lq"], plain[i]["alt_lq"])
    # In batches too.
    batch = next(iter(dlas_fast.create_dataloader(ds, {"phase": "train", "batch_size": 2})))
    assert tuple(batch["hq_usm"].shape) == (2, 3, 64, 64)


def test_frames_each_get_their_sharpened_hq(still_clip):
    opt = {"mode": "multi_frame_extensible", "paths": str(still_clip), "num_frames": 2,
           "target_size": 64, "scale": 4, "random_seed": 1, "degradation": "realesrgan",
           "gt_usm": True}  # fmt: skip
    ds = dlas_fast.create_dataset(opt)
    item = ds[0]
    assert tuple(item["hq_usm"].shape) == (2, 3, 64, 64)
    # Through worker processes: create_dataloader's batches and torch's default collate.
    loader = dlas_fast.create_dataloader(ds, {"phase": "train", "batch_size": 2,
                                              "n_workers": 1})  # fmt: skip
    batch = next(iter(loader))
    assert tuple(batch["hq_usm"].shape) == (2, 2, 3, 64, 64)
    torch_loader = torch.utils.data.DataLoader(ds, batch_size=2, num_workers=1)
    batch = next(iter(torch_loader))
    assert tuple(batch["hq_usm"].shape) == (2, 2, 3, 64, 64)
    np.testing.assert_allclose(batch["hq_usm"][0].numpy(), item["hq_usm"].numpy(), atol=0)
    for f in range(2):
        want = realesrgan_stage("usm", np.ascontiguousarray(item["hq"][f].numpy()))
        np.testing.assert_allclose(item["hq_usm"][f].numpy(), want, atol=1e-6)
    # In eval mode, where nothing is degraded, too.
    single = {k: v for k, v in opt.items() if k != "num_frames"}
    single.update(mode="single_image_extensible", eval=True)
    item = dlas_fast.create_dataset(single)[0]
    want = realesrgan_stage("usm", np.ascontiguousarray(item["hq"].numpy()))
    np.testing.assert_allclose(item["hq_usm"].numpy(), want, atol=1e-6)


def test_datasets_reject_what_they_cannot_do(photos):
    opt = {"mode": "imagefolder", "paths": str(photos), "target_size": 64, "scale": 4,
           "degradation": "realesrgan"}  # fmt: skip
    with pytest.raises(ValueError, match="noise_range2"):
        dlas_fast.create_dataset(dict(opt, noise_range2=[5]))
    with pytest.raises(ValueError, match="degradation"):
        dlas_fast.create_dataset({"mode": "multiscale", "paths": str(photos),
                                  "hq_tile_size": 16, "degradation": "realesrgan"})  # fmt: skip


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
    # With noise, each frame gets noise of its own.
    noisy = dlas_fast.create_dataset({k: v for k, v in opt.items() if k not in NO_NOISE})
    lq = noisy[0]["lq"].numpy()
    assert not np.array_equal(lq[0], lq[1])
    assert np.abs(lq[0] - lq[1]).mean() < 0.1  # the same picture, the same draw
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
    # l1_gt_usm: the model wants the sharpened ground truth.
    assert opt["gt_usm"] is True and tuple(item["hq_usm"].shape) == (3, 64, 64)
    loader = dlas_fast.create_dataloader(ds, opt)
    batch = next(iter(loader))
    assert tuple(batch["lq"].shape) == (2, 3, 16, 16)
    # Paired-data fine-tuning (high_order_degradation: false): no degradation.
    cfg.write_text(X4PLUS_YAML.format(root=photos) + "high_order_degradation: false\n")
    assert "degradation" not in dataset_options(cfg, "train")


# --- fidelity to the reference (tests/golden/realesrgan, made from BasicSR) ------------


@pytest.fixture(scope="module")
def stages():
    return np.load(GOLDEN / "stages.npz")


def ks_2samp(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Two-sample Kolmogorov-Smirnov statistic and its asymptotic p-value."""
    a, b = np.sort(np.asarray(a, np.float64)), np.sort(np.asarray(b, np.float64))
    both = np.concatenate([a, b])
    d = float(np.max(np.abs(np.searchsorted(a, both, "right") / len(a)
                            - np.searchsorted(b, both, "right") / len(b))))  # fmt: skip
    if d == 0:
        return d, 1.0
    en = np.sqrt(len(a) * len(b) / (len(a) + len(b)))
    lam = (en + 0.12 + 0.11 / en) * d
    k = np.arange(1, 101)
    p = float(np.clip(2 * np.sum((-1.0) ** (k - 1) * np.exp(-2 * k**2 * lam**2)), 0, 1))
    return d, p


def test_kernels_equal_basicsr_for_the_same_parameters():
    g = np.load(GOLDEN / "kernels.npz")
    names = list(g["type_names"])
    for i in range(len(g["type"])):
        name, size = names[g["type"][i]], int(g["size"][i])
        if name == "sinc":
            pad = int(g["pad_to"][i])
            k = realesrgan_kernel("sinc", size, omega=float(g["cutoff"][i]), pad_to=pad)
        else:
            k = realesrgan_kernel(name, size, float(g["sig_x"][i]), float(g["sig_y"][i]),
                                  float(g["theta"][i]), float(g["beta"][i]))  # fmt: skip
        n = k.shape[0]
        assert n in (size, 21), (i, n)
        p = (21 - n) // 2
        padded = np.zeros((21, 21))
        padded[p : p + n, p : p + n] = k
        np.testing.assert_allclose(padded, g["kernels"][i], atol=1e-6, rtol=0, err_msg=f"{i}")


def test_filter2d_equals_the_reference(stages):
    for k, want in zip(stages["filter2d_kernels"], stages["filter2d_out"]):
        got = realesrgan_stage("filter2d", stages["input"], kernel=k)
        np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)
    for k, want in zip(stages["filter2d_kernels"], stages["filter2d_batch_out"]):
        got = realesrgan_stage("filter2d", stages["input"], kernel=k)
        np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)


@pytest.mark.parametrize("mode", ["area", "bilinear", "bicubic"])
def test_interpolate_equals_torch_near_a_factor_of_one(mode):
    # torch's bilinear kernel copies an axis whose size does not change, whatever the
    # factor; its bicubic one maps it with the factor.
    g = torch.Generator().manual_seed(0)
    for shape, f in [((96, 400), 1.0029), ((96, 96), 1.0029), ((50, 300), 1.004)]:
        x = torch.rand(1, 3, *shape, generator=g)
        want = torch.nn.functional.interpolate(x, scale_factor=f, mode=mode)[0].numpy()
        got = realesrgan_stage("interpolate", x[0].numpy(), mode=mode, scale_factor=f)
        np.testing.assert_allclose(got, want, atol=2e-5, rtol=0, err_msg=f"{shape} {f}")


@pytest.mark.parametrize("mode", ["area", "bilinear", "bicubic"])
def test_interpolate_equals_torch(stages, mode):
    x = stages["input"]
    for s in stages["interp_scales"]:
        want = stages[f"interp_scale_{f'{s:g}'.replace('.', 'p')}_{mode}"]
        got = realesrgan_stage("interpolate", x, mode=mode, scale_factor=float(s))
        assert got.shape == want.shape, (s, mode)
        np.testing.assert_allclose(got, want, atol=1e-5, rtol=0, err_msg=f"{s} {mode}")
    for h, w in stages["interp_sizes"]:
        want = stages[f"interp_size_{h}x{w}_{mode}"]
        got = realesrgan_stage("interpolate", x, mode=mode, size=(int(h), int(w)))
        np.testing.assert_allclose(got, want, atol=1e-5, rtol=0, err_msg=f"{h}x{w} {mode}")


def test_jpeg_equals_diffjpeg(stages):
    for q, want in zip(stages["jpeg_quality"], stages["jpeg_out"]):
        got = realesrgan_stage("jpeg", stages["input"], quality=float(q))
        diff = np.abs(got - want)
        # f32 transforms summed in another order: a coefficient on a rounding boundary
        # may land on the other side, changing its block a little.
        assert np.mean(diff < 1e-4) > 0.999, (q, np.mean(diff < 1e-4))
        assert diff.max() < 2 / 255, (q, diff.max())


def test_usm_and_rounding_equal_the_reference(stages):
    got = realesrgan_stage("usm", stages["input"])
    np.testing.assert_allclose(got, stages["usm_out"], atol=1e-5, rtol=0)
    rounded = realesrgan_stage("round", stages["round_in"])
    np.testing.assert_array_equal(rounded, stages["round_out"])


def test_poisson_vals_equal_the_reference(stages):
    for img, colour, grey in zip(stages["poisson_vals_input"], stages["poisson_vals_color"],
                                 stages["poisson_vals_gray"]):  # fmt: skip
        assert realesrgan_poisson_vals(img, False) == colour
        assert realesrgan_poisson_vals(img, True) == grey


def test_noise_distributions_match_the_reference(stages):
    # As the reference's sample: a 3 x 28 x 256 image whose first row holds every
    # level (so vals = 256), the rest flat at the level; noise from the flat rows.
    for level, want in zip(stages["poisson_levels"], stages["poisson_samples"]):
        img = np.full((3, 28, 256), level, np.float32)
        img[:, 0, :] = np.arange(256, dtype=np.float32) / 255
        noisy = realesrgan_stage("poisson_noise", img, scale=1.0, gray=False, seed=2)
        assert noisy.shape == img.shape
        got = (noisy - img)[:, 1:, :].ravel()
        # The noisy image is clipped to [0, 1]: compare what survives the clip.
        clipped = np.clip(want + level, 0, 1) - level
        _, p = ks_2samp(got, clipped)
        assert p > 1e-3, (level, p)
    flat = np.full((3, 80, 86), 0.5, np.float32)
    got = (realesrgan_stage("gaussian_noise", flat, sigma=10.0, gray=False, seed=3) - 0.5).ravel()
    _, p = ks_2samp(got, stages["gauss_samples"])
    assert p > 1e-3, p


def our_draws(n: int) -> dict[str, np.ndarray]:
    """`n` draws of the x4plus defaults in the golden file's names and codes."""
    d = degrader(random_seed=11)
    kinds = ["iso", "aniso", "generalized_iso", "generalized_aniso", "plateau_iso",
             "plateau_aniso"]  # fmt: skip
    modes = ["area", "bilinear", "bicubic"]
    nan = float("nan")
    rows = []
    for i in range(n):
        x = d.draws(index=i)
        row = {}
        for k in ("k1", "k2"):
            kd = x["kernel1" if k == "k1" else "kernel2"]
            iso = kd["sinc"] or kd["kind"] in ("iso", "generalized_iso", "plateau_iso")
            row[f"{k}_is_sinc"] = float(kd["sinc"])
            row[f"{k}_type"] = 6.0 if kd["sinc"] else float(kinds.index(kd["kind"]))
            row[f"{k}_size"] = float(kd["size"])
            row[f"{k}_sigma_x"] = kd["sigma_x"]
            row[f"{k}_sigma_y"] = nan if iso else kd["sigma_y"]
            row[f"{k}_theta"] = nan if iso else kd["theta"]
            row[f"{k}_beta"] = kd["beta"]
            row[f"{k}_omega_c"] = kd["omega"]
        fs = x["final_sinc"]
        row["final_sinc"] = float(fs is not None)
        row["final_size"] = nan if fs is None else float(fs["size"])
        row["final_omega_c"] = nan if fs is None else fs["omega"]
        for j in ("1", "2"):
            r, ns = x[f"resize{j}"], x[f"noise{j}"]
            row[f"resize{j}_type"] = float(["up", "down", "keep"].index(r["updown"]))
            row[f"resize{j}_scale"] = r["scale"]
            row[f"resize{j}_mode"] = float(modes.index(r["mode"]))
            row[f"noise{j}_type"] = 0.0 if ns["gaussian"] else 1.0
            row[f"noise{j}_sigma"] = ns.get("sigma", nan)
            row[f"noise{j}_poisson_scale"] = ns.get("scale", nan)
            row[f"noise{j}_gray"] = float(ns["gray"])
            row[f"jpeg{j}_quality"] = x[f"jpeg{j}"]
        row["blur2_applied"] = float(x["second_blur"])
        row["final_order"] = 0.0 if x["resize_first"] else 1.0
        row["final_mode"] = float(modes.index(x["final_mode"]))
        rows.append(row)
    return {k: np.array([r[k] for r in rows]) for k in rows[0]}


def test_every_drawn_parameter_follows_the_references_distribution():
    want = np.load(GOLDEN / "draws.npz")
    got = our_draws(10_000)
    # Every parameter the reference draws, but the flip (the datasets' own) and what is
    # not a draw (the options, the GT size and the second resize's output size).
    not_draws = {"hflip", "options_json", "gt_hw", "resize2_out_h", "resize2_out_w"}
    assert set(got) == set(want.files) - not_draws
    for name, ours in got.items():
        theirs = want[name].astype(np.float64)
        # The same share of items draws it (NaN where it does not apply)...
        applies, applies_ref = ~np.isnan(ours), ~np.isnan(theirs)
        assert abs(applies.mean() - applies_ref.mean()) < 0.02, name
        # ... and its values follow the same distribution (KS, two samples).
        _, p = ks_2samp(ours[applies], theirs[applies_ref])
        assert p > 1e-3, (name, p)


def test_item_edges_are_degraded_like_their_inside():
    # An item is degraded with a margin, as the reference degrades a larger image than
    # it keeps: its edge pixels are no further from the clean image than the others
    # (without it, their error is a third to a half larger: blur reflections, black
    # JPEG padding).
    d = degrader(random_seed=5)
    y, x = np.mgrid[0:128, 0:128].astype(np.float32)
    gt = np.stack([0.4 + 0.2 * np.sin(x / 20), 0.5 + 0.2 * np.cos(y / 25),
                   0.45 + 0.1 * np.sin((x + y) / 30)], -1).astype(np.float32)  # fmt: skip
    clean = gt.reshape(32, 4, 32, 4, 3).mean((1, 3))
    err = np.mean([np.abs(d.degrade(gt, 4, index=i)[0] - clean) for i in range(150)], 0)
    inside = err[4:-4, 4:-4].mean()
    for edge in (err[0], err[-1], err[:, 0], err[:, -1]):
        assert edge.mean() < 1.25 * inside, edge.mean() / inside


def test_whole_items_equal_the_reference_operators_in_feed_datas_order():
    # pipeline.npz: the reference's own operators (USMSharp, filter2D, F.interpolate,
    # DiffJPEG, the final rounding) run in feed_data's order and sizes with our draws for
    # these items, noise off, on the ground truth with our margin. Any stage dropped,
    # moved, sized or clamped otherwise shows here.
    import json

    g = np.load(GOLDEN / "pipeline.npz")
    d = ImageCorruptor(json.loads(str(g["options"])))
    scale = int(g["scale"])
    for i, (want, draws) in enumerate(zip(g["lq"], g["draws"])):
        ours = d.draws(index=i, epoch=0)
        assert json.dumps(ours, sort_keys=True) == str(draws), (
            f"item {i}: the draws changed; regenerate pipeline.npz "
            "(scripts/realesrgan_reference.py golden --only-pipeline)"
        )
        lq, _ = d.degrade(g["gt"], scale, index=i, epoch=0)
        diff = np.abs(lq - want)
        # Whole 8-bit steps both; f32 sums in another order may round a value to the
        # neighbouring step, or move a DiffJPEG coefficient across a rounding boundary.
        assert diff.mean() < 0.1 / 255, (i, diff.mean() * 255)
        assert (diff > 1.5 / 255).mean() < 0.01, (i, (diff > 1.5 / 255).mean())
