"""ImageCorruptor (docs/spec.md §7) and the corrupted LQ images of SingleImageDataset
(docs/spec.md §4).

Where DLAS used OpenCV or PIL, the oracle is OpenCV or PIL itself, fed the strength the
corruptor reports (its "entropy").
"""

from __future__ import annotations

import io

import cv2
import dlas_fast
import numpy as np
import pytest
import torch
from conftest import gradient
from dlas_fast import ImageCorruptor
from PIL import Image


def photo(h: int = 48, w: int = 64, seed: int = 0) -> np.ndarray:
    return gradient(w, h, seed=seed).astype(np.float32) / 255.0


def corrupt(names, img, index=0, seed=1, **opt):
    c = ImageCorruptor(dict(opt, fixed_corruptions=list(names), random_seed=seed))
    out, entropy = c.corrupt_images([img], return_entropy=True, index=index)
    return out[0], entropy


def test_every_name_is_accepted_and_changes_the_image():
    img = photo()
    for name in dlas_fast.CORRUPTION_NAMES:
        changed = False
        for index in range(6):
            out, entropy = corrupt([name], img, index=index, cosine_bias=False)
            assert out.shape == img.shape and out.dtype == np.float32, name
            assert np.isfinite(out).all() and len(entropy) == 1, name
            changed |= not np.array_equal(out, img)
        assert changed == (name != "none"), name


def test_unknown_names_are_rejected_when_built():
    with pytest.raises(ValueError, match=r"fixed_corruptions.*'?\"?blurr"):
        ImageCorruptor({"fixed_corruptions": ["blurr"]})
    with pytest.raises(ValueError, match="random_corruptions"):
        ImageCorruptor({"random_corruptions": ["jpeg", "jpeg-7"], "num_corrupts_per_image": 1})
    with pytest.raises(ValueError, match="num_corrupts_per_image"):
        ImageCorruptor({"num_corrupts_per_image": 2})
    with pytest.raises(ValueError, match="random_seed"):
        ImageCorruptor({"fixed_corruptions": ["jpeg"], "random_seed": 1.5})


def test_seeded_calls_are_reproducible():
    opt = {"fixed_corruptions": ["jpeg-broad", "gaussian_blur"], "random_seed": 42,
           "random_corruptions": list(dlas_fast.CORRUPTION_NAMES),
           "num_corrupts_per_image": 2}  # fmt: skip
    img = photo()
    a, b = ImageCorruptor(opt), ImageCorruptor(opt)
    x, ex = a.corrupt_images([img], True, index=7, epoch=3)
    y, ey = b.corrupt_images([img], True, index=7, epoch=3)
    assert np.array_equal(x[0], y[0]) and ex == ey
    z, ez = b.corrupt_images([img], True, index=8, epoch=3)
    w, ew = b.corrupt_images([img], True, index=7, epoch=4)
    assert ez != ex and ew != ex
    # Call-counted calls: two corruptors with one seed give the same sequence.
    seq_a = [a.corrupt_images([img], True)[1] for _ in range(3)]
    seq_b = [b.corrupt_images([img], True)[1] for _ in range(3)]
    assert seq_a == seq_b and seq_a[0] != seq_a[1]
    # Unseeded: every call is fresh.
    free = ImageCorruptor(dict(opt, random_seed=None))
    assert (
        free.corrupt_images([img], True, index=7)[1] != free.corrupt_images([img], True, index=7)[1]
    )


def test_strengths_follow_the_cosine_bias():
    img = np.zeros((1, 1, 3), np.float32)
    for bias, expected in ((True, 1 - 2 / np.pi), (False, 0.5)):
        c = ImageCorruptor({"fixed_corruptions": ["none"], "random_seed": 0, "cosine_bias": bias})
        r = np.array([c.corrupt_images([img], True, index=i)[1][0] for i in range(3000)])
        assert ((r >= 0) & (r <= 1)).all()
        assert abs(r.mean() - expected) < 0.02


def test_gaussian_blur_matches_opencv():
    img = photo(40, 56)
    for scale in (1, 2.5):
        for index in range(4):
            out, (r,) = corrupt(["gaussian_blur"], img, index, corruption_blur_scale=scale)
            sigma = scale * r * 1.5
            want = cv2.GaussianBlur(img, (0, 0), sigma) if round(8 * sigma + 1) | 1 > 1 else img
            np.testing.assert_allclose(out, want, atol=2e-6)


def test_motion_blur_matches_opencv_at_one_of_the_angles():
    img = photo(32, 40)
    for index in range(3):
        out, (r,) = corrupt(["motion_blur"], img, index, corruption_blur_scale=2)
        n = int(2 * r * 3 + 1)
        if n == 1:
            assert np.array_equal(out, img)
            continue
        best = np.inf
        for angle in range(361):  # DLAS: random.randint(0, 360)
            k = np.zeros((n, n), np.float32)
            k[(n - 1) // 2, :] = 1
            rot = cv2.getRotationMatrix2D((n / 2 - 0.5, n / 2 - 0.5), angle, 1.0)
            k = cv2.warpAffine(k, rot, (n, n))
            k = k / k.sum()
            best = min(best, np.abs(cv2.filter2D(img, -1, k) - out).max())
        # OpenCV's warpAffine interpolates with 5-bit fixed-point weights.
        assert best < 0.02, (n, best)


@pytest.mark.parametrize(
    "name,lo,span",
    [("jpeg", 10, 20), ("jpeg-low", 15, 10), ("jpeg-medium", 23, 25), ("jpeg-broad", 15, 60),
     ("jpeg-normal", 47, 35)],
)  # fmt: skip
def test_jpeg_round_trips_match_pil(name, lo, span):
    img = photo(48, 64, seed=3)
    for index in range(2):
        out, (r,) = corrupt([name], img, index)
        q = int((1 - r) * span) + lo
        buf = io.BytesIO()
        Image.fromarray((img * 255).astype(np.uint8)).save(buf, "JPEG", quality=q, optimize=True)
        want = cv2.imdecode(np.frombuffer(buf.getvalue(), np.uint8), cv2.IMREAD_COLOR)
        want = want[:, :, ::-1].astype(np.float32) / 255
        diff = np.abs(out - want)
        assert diff.max() <= 1 / 255 + 1e-6 and diff.mean() < 0.1 / 255, (q, diff.max())


def test_jpeg_is_skipped_when_noise_is_applied():
    img = photo()
    with_jpeg, _ = corrupt(["noise-5", "jpeg"], img, 3)
    without, _ = corrupt(["noise-5", "none"], img, 3)
    assert np.array_equal(with_jpeg, without)
    # ...also when the noise is a random pick.
    opt = {"random_corruptions": ["noise"], "num_corrupts_per_image": 1, "random_seed": 5}
    a = ImageCorruptor(dict(opt, fixed_corruptions=["jpeg"])).corrupt_images([img], index=0)[0]
    b = ImageCorruptor(dict(opt, fixed_corruptions=["none"])).corrupt_images([img], index=0)[0]
    assert np.array_equal(a, b)


def test_noise_amplitudes():
    img = np.full((64, 64, 3), 0.5, np.float32)
    out, (r,) = corrupt(["noise"], img, 1, cosine_bias=False)
    d = out - img
    assert d.min() >= 0 and d.max() < r * 6 / 255 + 1e-6 and d.max() > r * 5 / 255
    out, _ = corrupt(["noise-5"], img, 1)
    d = out - img
    assert d.min() >= 0 and d.max() < 5 / 255 + 1e-6 and abs(d.mean() - 2.5 / 255) < 0.1 / 255


def test_pointwise_corruptions_match_their_formulas():
    img = photo()
    out, (r,) = corrupt(["color_quantization"], img, 2)
    div = 2 ** (int(r * 10 / 3) + 2)
    np.testing.assert_allclose(out, (img * 255 // div) * div / 255, atol=1e-6)
    out, (r,) = corrupt(["saturation"], img, 2)
    np.testing.assert_allclose(out, np.clip(img + 0.3 * r, 0, 1), atol=1e-6)
    out, _ = corrupt(["greyscale"], img, 2)
    np.testing.assert_allclose(out, np.repeat(img.mean(axis=2, keepdims=True), 3, 2), atol=1e-6)


def test_lq_resampling_is_an_opencv_shrink_then_a_linear_grow():
    img = photo(64, 48)
    modes = (cv2.INTER_NEAREST, cv2.INTER_CUBIC, cv2.INTER_LINEAR, cv2.INTER_LANCZOS4)
    for name in ("lq_resampling", "lq_resampling4x"):
        for index in range(4):
            out, (r,) = corrupt([name], img, index, cosine_bias=False)
            f = 4 if name.endswith("4x") or r >= 0.7 else 2 if r >= 0.3 else 1
            if f == 1:
                assert np.array_equal(out, img)
                continue
            small = (cv2.resize(img, (48 // f, 64 // f), interpolation=m) for m in modes)
            grown = (cv2.resize(s, (48, 64), interpolation=cv2.INTER_LINEAR) for s in small)
            best = min(np.abs(g - out).max() for g in grown)
            assert best < 1e-4, (name, f, best)


def test_the_four_names_dlas_ignores_do_what_they_say():
    img = photo(40, 40)
    # block_noise: one rectangle replaced, the rest untouched.
    out, (r,) = corrupt(["block_noise"], img, 1)
    rows, cols = np.nonzero((out != img).any(axis=2))
    side = round(40 * (0.1 + 0.4 * r))
    assert rows.max() - rows.min() + 1 <= side and cols.max() - cols.min() + 1 <= side
    assert (out != img).any(axis=2).sum() > 0.5 * side * side
    # color_shift: one offset per channel (where nothing clips).
    out, (r,) = corrupt(["color_shift"], img, 2)
    d = out - img
    inside = ((out > 0) & (out < 1)).all(axis=2)
    for c in range(3):
        assert np.ptp(d[..., c][inside]) < 1e-6 and abs(d[inside, c][0]) <= 0.15 * r + 1e-6
    assert np.abs(d).max() > 0
    # interlacing: even rows untouched, odd rows shifted sideways.
    out, (r,) = corrupt(["interlacing"], img, 3)
    assert np.array_equal(out[0::2], img[0::2])
    s = 1 + int(3 * r)
    right = np.array_equal(out[1::2, s:], img[1::2, :-s])
    left = np.array_equal(out[1::2, :-s], img[1::2, s:])
    assert right or left
    # chromatic_aberration: green stays, red and blue move.
    out, (r,) = corrupt(["chromatic_aberration"], img, 4, cosine_bias=False)
    assert np.array_equal(out[..., 1], img[..., 1])
    assert not np.array_equal(out[..., 0], img[..., 0]) and not np.array_equal(
        out[..., 2], img[..., 2]
    )


def test_color_jitter_stays_in_range_and_changes_colours():
    img = photo()
    out, (r,) = corrupt(["color_jitter"], img, 0, cosine_bias=False)
    assert r * 0.2 * 255 > 1
    assert out.min() >= 0 and out.max() <= 1 and np.abs(out - img).mean() > 1e-3


def test_each_image_has_its_own_undo():
    # DLAS keeps one undo list for all images of a call: the second image is grown
    # twice. Here each image comes back at its own size.
    c = ImageCorruptor({"fixed_corruptions": ["lq_resampling4x"], "random_seed": 1})
    a, b = photo(32, 32), photo(24, 40, seed=1)
    out, entropy = c.corrupt_images([a, b], True)
    assert out[0].shape == a.shape and out[1].shape == b.shape and len(entropy) == 2


def test_inputs_are_not_modified_and_bad_shapes_are_errors():
    img = photo()
    keep = img.copy()
    corrupt(["noise", "saturation"], img)
    assert np.array_equal(img, keep)
    c = ImageCorruptor({"fixed_corruptions": ["jpeg"]})
    with pytest.raises(ValueError, match="H x W x 3"):
        c.corrupt_images([np.zeros((8, 8), np.float32)])
    # No corruption configured: the images come back as given, as DLAS.
    none = ImageCorruptor({})
    assert none.corrupt_images([img])[0] is img and none.corrupt_images([img], True)[1] == []


# DLAS's own example configuration (its single_image_dataset.py), seeded.
EXAMPLE = {"mode": "single_image_extensible", "target_size": 128, "force_multiple": 32,
           "scale": 2, "fixed_corruptions": ["jpeg-broad", "gaussian_blur"],
           "random_corruptions": ["noise-5", "none"], "num_corrupts_per_image": 1,
           "corrupt_before_downsize": True, "random_seed": 11}  # fmt: skip


def hwc(t: torch.Tensor) -> np.ndarray:
    return t.numpy().transpose(1, 2, 0)


@pytest.mark.parametrize("before", [True, False])
def test_dataset_lq_is_the_corruptor_applied_in_dlas_order(golden_extracted, before):
    dst, _ = golden_extracted
    opt = dict(EXAMPLE, paths=str(dst), corrupt_before_downsize=before)
    ds = dlas_fast.create_dataset(opt)
    clean = dlas_fast.create_dataset(dict(opt, fixed_corruptions=[], num_corrupts_per_image=0))
    ds.set_epoch(2)
    corruptor = ImageCorruptor(opt)
    for i in (0, 9, len(ds) - 1):
        got, ref = ds[i], clean[i]
        assert got["hq"].equal(ref["hq"])  # HQ is never corrupted
        assert not got["lq"].equal(ref["lq"])
        if before:  # corrupt the HQ image, then shrink it (INTER_AREA)
            hq = corruptor.corrupt_images([hwc(ref["hq"])], index=i, epoch=2)[0]
            want = cv2.resize(hq, (64, 64), interpolation=cv2.INTER_AREA)
        else:  # shrink, then corrupt the LQ image
            want = corruptor.corrupt_images([hwc(ref["lq"])], index=i, epoch=2)[0]
        np.testing.assert_allclose(hwc(got["lq"]), want, atol=2e-6)
    # The batch path gives the items' values.
    batch = dlas_fast.datasets.batch.collate(ds.__getitems__([3, 0, 3]))
    for j, i in enumerate([3, 0, 3]):
        assert batch["lq"][j].equal(ds[i]["lq"])


def test_eval_mode_does_not_corrupt(golden_extracted):
    dst, _ = golden_extracted
    ds = dlas_fast.create_dataset(dict(EXAMPLE, paths=str(dst), eval=True))
    item = ds[4]
    assert item["lq"].equal(item["hq"])


def epoch_batches(loader, epochs):
    """Every tensor of every batch, flattened per item, for each epoch."""
    keys = ("lq", "hq", "gt_fullsize_ref", "lq_fullsize_ref", "gt_center", "lq_center")
    out = []
    for e in range(epochs):
        loader.dataset.set_epoch(e)
        out.append(
            torch.cat([torch.cat([b[k].flatten(1).double() for k in keys], 1) for b in loader])
        )
    return out


@pytest.mark.parametrize("context,persistent", [("fork", False), ("spawn", True)])
def test_same_corruptions_whatever_the_workers(golden_extracted, context, persistent):
    dst, _ = golden_extracted
    ds = dlas_fast.create_dataset(dict(EXAMPLE, paths=str(dst)))
    collate = dlas_fast.datasets.batch.collate
    alone = epoch_batches(torch.utils.data.DataLoader(ds, batch_size=8, collate_fn=collate), 2)
    workers = torch.utils.data.DataLoader(ds, batch_size=8, collate_fn=collate, num_workers=2,
                                          multiprocessing_context=context,
                                          persistent_workers=persistent)  # fmt: skip
    # Item by item too (torch's own collate), in batches of another size.
    items = torch.utils.data.DataLoader(ds, batch_size=5, num_workers=2,
                                        multiprocessing_context=context)  # fmt: skip
    assert not alone[0].equal(alone[1])  # a new epoch, new corruptions
    for got in (epoch_batches(workers, 2), epoch_batches(items, 2)):
        assert got[0].equal(alone[0]) and got[1].equal(alone[1])


def test_create_dataloader_advances_the_epoch(golden_extracted):
    dst, _ = golden_extracted
    opt = dict(EXAMPLE, paths=str(dst), phase="train", batch_size=4, n_workers=0)
    ds = dlas_fast.create_dataset(opt)
    loader = dlas_fast.create_dataloader(ds, opt, shuffle=False)
    first = next(iter(loader))["lq"]
    assert ds.epoch == 0
    second = next(iter(loader))["lq"]
    assert ds.epoch == 1 and not first.equal(second)
    loader.set_epoch(0)
    assert next(iter(loader))["lq"].equal(first)


def test_layouts_sizes_and_bounds():
    img = photo(20, 24)
    c = ImageCorruptor({"fixed_corruptions": ["color_shift", "jpeg"], "random_seed": 2})
    native = c.native
    a, _ = native.corrupt([img], 0, 0)
    b, _ = native.corrupt([np.asfortranarray(img)], 0, 0)  # column-major input
    assert np.array_equal(a[0], b[0])
    empty = np.zeros((0, 5, 3), np.float32)
    for name in dlas_fast.CORRUPTION_NAMES:
        assert corrupt([name], empty)[0].shape == (0, 5, 3), name
    with pytest.raises(ValueError, match="corruption_blur_scale"):
        ImageCorruptor({"fixed_corruptions": ["gaussian_blur"], "corruption_blur_scale": 1e9})
