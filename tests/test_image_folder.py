"""ImageFolderDataset (docs/spec.md §5 ``imagefolder``): listing, cache, pipeline, alt images,
corruption, normalisation, errors, and DataLoader use."""

from __future__ import annotations

import os
import shutil
import time
import warnings
from pathlib import Path

import cv2
import dlas_fast
import numpy as np
import pytest
import torch
from conftest import gradient, save
from dlas_fast.corruptor import ImageCorruptor
from dlas_fast.datasets import ImageFolderDataset
from dlas_fast.datasets.batch import collate


def area(img: np.ndarray, h: int, w: int) -> np.ndarray:
    return cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)


def dlas_hq(path: Path, crop=None, square=True, target=None, multiple=1, scale=1, flip=False):
    """DLAS's read, centre crop, flip, square crop and resize_hq, with OpenCV."""
    img = cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_UNCHANGED), cv2.COLOR_BGR2RGB)
    img = img.astype(np.float32) / 255
    if crop is not None:
        y, x = img.shape[:2]
        top, left = y // 2 - crop // 2, x // 2 - crop // 2
        img = img[top : top + crop, left : left + crop]
    if flip:
        img = img[:, ::-1]
    if square:
        h, w = img.shape[:2]
        d = min(h, w)
        img = img[(h - d) // 2 : (h - d) // 2 + d, (w - d) // 2 : (w - d) // 2 + d]
    h, w = img.shape[:2]
    if target is not None and target != h:
        img = area(np.ascontiguousarray(img), target, target)
        h = w = target
    m = multiple * scale
    return np.ascontiguousarray(img[: h - h % m, : w - w % m])


def chw(a: np.ndarray) -> np.ndarray:
    return a.transpose(2, 0, 1)


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    """A small tree: frames of a video (with a gap), nested folders, non-images."""
    root = tmp_path / "imgs"
    for i in (1, 2, 3, 5):
        save(gradient(80, 60, seed=i), root / f"clip.webm_{i:08d}.png")
    save(gradient(50, 70, seed=10), root / "sub" / "deep" / "tall.png")
    save(gradient(64, 64, seed=11), root / "sub" / "sq.jpg", quality=95)
    save(gradient(64, 64, seed=12), root / "sub" / "ref.jpg")  # never listed
    (root / "sub" / "notes.txt").write_text("not an image")
    save(gradient(8, 8), root / "sub" / "upper.Jpg")  # not one of DLAS's spellings
    return root


def make(paths, **opt) -> ImageFolderDataset:
    base = {"scale": 1, "disable_flip": True}
    base.update(opt)
    return ImageFolderDataset(dict(base, paths=paths))


def test_listing_follows_dlas_order_and_extensions(folder):
    ds = make(str(folder))
    rel = [os.path.relpath(p, folder) for p in ds.get_paths()]
    assert rel == [f"clip.webm_{i:08d}.png" for i in (1, 2, 3, 5)] + [
        "sub/sq.jpg",
        "sub/deep/tall.png",
    ]
    # Paths are joined onto the root as given.
    assert all(p.startswith(str(folder)) for p in ds.get_paths())
    assert len(ds) == 6


def test_weights_repeat_roots_and_links_to_folders_are_not_entered(folder, tmp_path):
    other = tmp_path / "other"
    save(gradient(32, 32), other / "one.png")
    (other / "link").symlink_to(folder / "sub", target_is_directory=True)
    (other / "file_link.png").symlink_to(folder / "sub" / "deep" / "tall.png")
    ds = make([str(folder), str(other)], weights=[2, 3])
    paths = ds.get_paths()
    assert len(ds) == 6 * 2 + 2 * 3
    assert paths[:6] == paths[6:12]
    assert [os.path.basename(p) for p in paths[12:14]] == ["file_link.png", "one.png"]
    assert paths[12:14] * 3 == paths[12:]


def test_listing_cache_is_trusted_on_the_next_open(folder):
    time.sleep(0.05)  # the files are older than the racy window of the scan
    assert not make(str(folder)).files.caches()[0][1]
    assert make(str(folder)).files.caches()[0][1]


def test_listing_cache_is_reused_refreshed_and_relocatable(folder, tmp_path):
    ds = make(str(folder))
    ((cache, from_cache),) = ds.files.caches()
    assert cache == str(folder / ".dlas_fast-folder" / "listing.bin") and not from_cache
    assert not (folder / "cache.pth").exists()
    assert Path(cache).read_bytes().startswith(b"DLASFLST")  # our format, not a pickle
    # Make the folders' mtimes old enough to be trusted (not racily close to the scan).
    old = 1_600_000_000
    for d in [folder, *[p for p in folder.rglob("*") if p.is_dir()]]:
        os.utime(d, (old, old))
    assert not make(str(folder)).files.caches()[0][1]  # rebuilt: the stamps changed
    assert make(str(folder)).files.caches()[0][1]
    moved = tmp_path / "moved"
    shutil.move(str(folder), moved)
    ds2 = make(str(moved))
    assert ds2.files.caches()[0][1]  # relocated: the cache still holds
    assert ds2.get_paths()[0].startswith(str(moved))
    save(gradient(80, 60), moved / "sub" / "deep" / "new.png")
    ds3 = make(str(moved))
    assert not ds3.files.caches()[0][1] and len(ds3) == 7


@pytest.mark.parametrize(
    "opt",
    [
        {"target_size": 32, "scale": 2},
        {"target_size": 40, "scale": 4, "force_multiple": 2, "center_crop_hq_sz": 48},
        {"scale": 2, "force_square": False},
        {"scale": 3, "force_multiple": 2, "center_crop_hq_sz": 100},
        {"target_size": 96, "scale": 2},  # enlarged: OpenCV's area coefficients
    ],
)
def test_hq_and_lq_match_dlas_pipeline(folder, opt):
    ds = make(str(folder), **opt)
    s = opt.get("scale", 1)
    for i in (0, 4, 5):
        out = ds[i]
        crop = opt.get("center_crop_hq_sz")
        if crop is not None:
            h, w = cv2.imread(ds.get_paths()[i]).shape[:2]
            if crop > min(h, w):
                crop = None  # a side shorter than the crop is kept whole (DLAS: wraps)
        ref = dlas_hq(Path(ds.get_paths()[i]), crop, opt.get("force_square", True),
                      opt.get("target_size"), opt.get("force_multiple", 1), s)  # fmt: skip
        np.testing.assert_allclose(out["hq"].numpy(), chw(ref), atol=2e-6)
        lq = area(ref, ref.shape[0] // s, ref.shape[1] // s)
        np.testing.assert_allclose(out["lq"].numpy(), chw(lq), atol=2e-6)
        assert out["hq"].dtype == torch.float32 and out["lq"].dtype == torch.float32
        assert out["LQ_path"] == out["HQ_path"] == ds.get_paths()[i]
        assert out["has_alt"] is False
        assert out["corruption_entropy"].shape == (0,)
        assert out["corruption_entropy"].dtype == torch.float32


def test_flip_is_random_seeded_and_follows_the_epoch(folder):
    ds = make(str(folder), disable_flip=False, random_seed=3)
    plain = dlas_hq(Path(ds.get_paths()[4]))
    seen = []
    for epoch in range(12):
        ds.set_epoch(epoch)
        hq = ds[4]["hq"].numpy()
        if np.allclose(hq, chw(plain)):
            seen.append(False)
        else:
            np.testing.assert_allclose(hq, chw(plain[:, ::-1]))
            seen.append(True)
    assert any(seen) and not all(seen)
    again = make(str(folder), disable_flip=False, random_seed=3)
    again.set_epoch(5)
    ds.set_epoch(5)
    assert torch.equal(again[4]["hq"], ds[4]["hq"])


def test_color_jitter_changes_the_hq_image_within_range(folder):
    plain = make(str(folder), target_size=32)[0]["hq"]
    jit = make(str(folder), target_size=32, all_image_color_jitter=0.5, random_seed=1)
    outs = [jit[0]["hq"] for _ in range(2)]
    assert torch.equal(outs[0], outs[1])  # seeded
    assert not torch.allclose(outs[0], plain, atol=1e-3)
    assert outs[0].min() >= 0 and outs[0].max() <= 1
    tiny = make(str(folder), target_size=32, all_image_color_jitter=0.001)[0]["hq"]
    assert torch.equal(tiny, plain)  # DLAS skips a jitter of at most 1/255


def test_next_frame_alt_is_prepared_like_the_item(folder, tmp_path):
    # A video whose second frame is a copy of the first: the pair must come out equal
    # through the same flip, jitter and crops.
    root = tmp_path / "video"
    img = gradient(90, 60, seed=7)
    save(img, root / "v.mp4_00000010.png")
    save(img, root / "v.mp4_00000011.png")
    ds = make(str(root), disable_flip=False, all_image_color_jitter=0.3, fetch_alt_image=True,
              target_size=48, scale=2, random_seed=9)  # fmt: skip
    for epoch in range(4):
        ds.set_epoch(epoch)
        first = ds[0]
        assert first["has_alt"] is True
        torch.testing.assert_close(first["alt_hq"], first["hq"])
        assert first["alt_lq"].shape == first["lq"].shape
    last = ds[1]  # frame 11 has no frame 12
    assert last["has_alt"] is False
    assert torch.equal(last["alt_hq"], last["hq"])


def test_next_frame_alt_reads_the_next_counter(folder):
    ds = make(str(folder), fetch_alt_image=True)
    paths = ds.get_paths()
    out = ds[0]  # frame 1 -> frame 2
    assert out["has_alt"] is True
    np.testing.assert_allclose(out["alt_hq"].numpy(), chw(dlas_hq(Path(paths[1]))), atol=2e-6)
    assert ds[2]["has_alt"] is False  # frame 3 -> 4 is missing
    assert ds[4]["has_alt"] is False  # sq.jpg: no frame number


def test_tiled_alt_is_another_tile_of_the_same_folder(tmp_path):
    root = tmp_path / "chunks"
    tiles = {}
    for chunk in ("a", "b"):
        for t in range(4):
            tiles[(chunk, t)] = gradient(32, 32, seed=hash((chunk, t)) % 1000)
            save(tiles[(chunk, t)], root / chunk / f"{t:08d}.png")
        save(gradient(64, 64), root / chunk / "ref.png")
    save(gradient(32, 32, seed=99), root / "lonely" / "00000000.png")
    ds = make(str(root), fetch_alt_tiled_image=True, random_seed=4)
    paths = ds.get_paths()
    ref_png = [i for i, p in enumerate(paths) if p.endswith("ref.png")]
    for i, p in enumerate(paths):
        if i in ref_png:
            continue
        chunk = os.path.basename(os.path.dirname(p))
        picks = set()
        for epoch in range(8):
            ds.set_epoch(epoch)
            out = ds[i]
            assert out["has_alt"] is True and "alt_lq" not in out
            hits = [
                t
                for (c, t), img in tiles.items()
                if c == chunk and np.allclose(out["alt_hq"].numpy(), chw(img / 255), atol=1e-6)
            ]
            if chunk == "lonely":
                assert torch.equal(out["alt_hq"], out["hq"])
                continue
            assert len(hits) == 1 and f"{hits[0]:08d}.png" != os.path.basename(p)
            picks.add(hits[0])
        if chunk != "lonely":
            assert len(picks) >= 2  # drawn at random, not a fixed neighbour


def test_corruption_before_and_after_downsize_match_the_corruptor(folder):
    corr = {"fixed_corruptions": ["gaussian_blur", "jpeg-medium"], "random_seed": 5}
    after = make(str(folder), target_size=48, scale=4, **corr)
    before = make(str(folder), target_size=48, scale=4, corrupt_before_downsize=True,
                  corrupt_before_downsize_factor=2, **corr)  # fmt: skip
    c = ImageCorruptor(corr)
    for ds, mode in ((after, "after"), (before, "before")):
        ds.set_epoch(2)
        out = ds[1]
        hq = out["hq"].numpy().transpose(1, 2, 0)
        src = area(hq, 24, 24) if mode == "before" else area(hq, 12, 12)
        (img,), ent = c.corrupt_images([src], return_entropy=True, index=1, epoch=2)
        if mode == "before":
            img = area(img, 12, 12)
        np.testing.assert_allclose(out["lq"].numpy(), chw(img), atol=2 / 255)
        assert out["corruption_entropy"].tolist() == pytest.approx(ent)
        assert out["corruption_entropy"].shape == (2,)


def test_alt_frame_is_corrupted_with_the_item(folder):
    ds = make(str(folder), fetch_alt_image=True, target_size=32, scale=2,
              fixed_corruptions=["noise"], random_seed=1)  # fmt: skip
    out = ds[0]
    assert out["corruption_entropy"].shape == (2,)  # one strength per image, as DLAS
    assert not torch.equal(out["alt_lq"], out["lq"])


def test_normalize_and_rgb_n1_to_1(folder):
    plain = make(str(folder), target_size=32, scale=2)[0]
    for norm, (mean, std) in {"imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
                              "stylegan2_norm": ((0.5,) * 3, (0.5,) * 3)}.items():  # fmt: skip
        out = make(str(folder), target_size=32, scale=2, normalize=norm, rgb_n1_to_1=True)[0]
        m, s = torch.tensor(mean).view(3, 1, 1), torch.tensor(std).view(3, 1, 1)
        for k in ("hq", "lq"):
            torch.testing.assert_close(out[k], ((plain[k] - m) / s) * 2 - 1)


def test_skip_lq_and_fixed_parameters(folder):
    out = make(str(folder), skip_lq=True, fixed_parameters={"z": [1.5, 2.0], "n": 3})[0]
    assert "lq" not in out and "corruption_entropy" not in out
    assert out["z"].tolist() == [1.5, 2.0] and out["n"].item() == 3
    batch = collate(make(str(folder), skip_lq=True, fixed_parameters={"n": 3},
                         target_size=16).__getitems__([0, 1, 2]))  # fmt: skip
    assert batch["n"].tolist() == [3, 3, 3] and batch["hq"].shape == (3, 3, 16, 16)


def test_images_of_any_mode_come_out_rgb(tmp_path):
    root = tmp_path / "modes"
    rgb = gradient(24, 24)
    save(rgb[..., 0], root / "grey.png")
    save(np.dstack([rgb, np.full((24, 24, 1), 7, np.uint8)]), root / "rgba.png")
    ds = make(str(root))
    grey, rgba = ds[0], ds[1]
    assert grey["hq"].shape == (3, 24, 24)
    assert torch.equal(grey["hq"][0], grey["hq"][2])
    np.testing.assert_allclose(rgba["hq"].numpy(), chw(rgb / 255), atol=1e-6)


def test_batches_equal_items_and_workers_agree(folder):
    opt = dict(paths=str(folder), mode="imagefolder", scale=2, target_size=32, batch_size=3,
               n_workers=0, random_seed=2, disable_flip=False, fetch_alt_image=True,
               fixed_corruptions=["jpeg-low"], normalize="imagenet", fixed_parameters={"k": 1},
               shuffle=False)  # fmt: skip
    ds = dlas_fast.create_dataset({k: v for k, v in opt.items() if k != "shuffle"})
    items = [ds[i] for i in range(3)]
    batch = collate(ds.__getitems__([0, 1, 2]))
    for k in ("hq", "lq", "alt_hq", "alt_lq", "corruption_entropy", "k"):
        torch.testing.assert_close(batch[k], torch.stack([it[k] for it in items]))
    assert batch["has_alt"].tolist() == [it["has_alt"] for it in items]
    runs = {}
    for workers in (0, 2):
        loader = dlas_fast.create_dataloader(
            ds, dict(opt, n_workers=workers, pin_memory=False), shuffle=False
        )
        runs[workers] = [b for b in loader]
    assert len(runs[0]) == 2
    for a, b in zip(runs[0], runs[2]):
        assert a.keys() == b.keys()
        for k in a:
            if isinstance(a[k], torch.Tensor):
                torch.testing.assert_close(a[k], b[k])
            else:
                assert a[k] == b[k]
    # torch's own collate on the per-item dicts works too.
    plain = torch.utils.data.DataLoader(ds, batch_size=3, num_workers=1)
    first = next(iter(plain))
    assert first["hq"].shape == (3, 3, 32, 32) and first["has_alt"].dtype == torch.bool


def test_mixed_sizes_without_target_size_load_item_by_item(folder):
    ds = make(str(folder), force_square=False)
    items = ds.__getitems__([0, 5])
    assert items[0]["hq"].shape == (3, 60, 80) and items[1]["hq"].shape == (3, 70, 50)


def test_bad_options_and_files_are_named(folder, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="no images in .*empty"):
        make(str(empty))
    with pytest.raises(ValueError, match="mutually exclusive"):
        make(str(folder), fetch_alt_image=True, fetch_alt_tiled_image=True)
    with pytest.raises(ValueError, match="normalize"):
        make(str(folder), normalize="zscore")
    with pytest.raises(ValueError, match="corrupt_before_downsize_factor"):
        make(str(folder), scale=4, corrupt_before_downsize=True, corrupt_before_downsize_factor=3)
    with pytest.raises(ValueError, match="force_multiple"):
        make(str(folder), target_size=30, scale=2, force_multiple=4)
    with pytest.raises(NotImplementedError, match="labeler"):
        make(str(folder), labeler={"type": "patch_labels"})
    with pytest.raises(ValueError, match="not a folder"):
        make(str(folder / "clip.webm_00000001.png"))
    with pytest.warns(UserWarning, match="bogus"):
        make(str(folder), bogus=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        make(str(folder), name="x", phase="train", batch_size=2)
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    ds = make(str(folder), on_error="raise")
    bad = ds.get_paths().index(str(folder / "broken.png"))
    with pytest.raises(dlas_fast.DlasError, match="broken.png"):
        ds[bad]
    with pytest.raises(ValueError, match="on_error"):
        make(str(folder), on_error="ignore")


def test_random_corruptions_alone_apply_and_report_no_strengths(folder):
    ds = make(str(folder), target_size=32, scale=2, random_corruptions=["greyscale"],
              num_corrupts_per_image=1)  # fmt: skip
    out = ds[0]
    assert torch.equal(out["lq"][0], out["lq"][1]) and torch.equal(out["lq"][1], out["lq"][2])
    assert not torch.equal(out["hq"][0], out["hq"][1])
    assert out["corruption_entropy"].shape == (0,)


@pytest.mark.parametrize("damage", ["flipped byte", "newer version"])
def test_a_damaged_or_newer_listing_cache_is_rebuilt(folder, damage):
    import zlib

    time.sleep(0.05)
    make(str(folder))
    path = folder / ".dlas_fast-folder" / "listing.bin"
    data = bytearray(path.read_bytes())
    if damage == "flipped byte":
        data[len(data) // 2] ^= 0xFF
    else:
        body = data[:-4]
        body[8:12] = (99).to_bytes(4, "little")
        data = body + zlib.crc32(bytes(body)).to_bytes(4, "little")
    path.write_bytes(bytes(data))
    ds = make(str(folder))
    assert not ds.files.caches()[0][1] and len(ds) == 6
    assert make(str(folder)).files.caches()[0][1]


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = float(((a - b) ** 2).mean())
    return float("inf") if mse == 0 else 10 * np.log10(1 / mse)


@pytest.fixture()
def photos(tmp_path: Path) -> Path:
    """Large images a target_size of 64 shrinks 4x or more: JPEGs in three chroma
    layouts (reduced by 2, 4 and 8) and a PNG (never reduced)."""
    root = tmp_path / "photos"
    save(gradient(1200, 900, seed=1), root / "a420.jpg", quality=90)
    save(gradient(700, 1100, seed=2), root / "b444.jpg", quality=95, subsampling=0)
    save(gradient(640, 300, seed=3), root / "c422.jpg", quality=90, subsampling=1)
    save(gradient(520, 520, seed=4), root / "d.png")
    return root


def test_reduced_decoding_is_close_to_a_full_decode(photos):
    # Flips, an odd centre crop and a colour jitter: each must land where the full
    # decode puts it. (A mirror or window off by much would fall far below 40 dB.)
    opt = {"target_size": 64, "scale": 2, "disable_flip": False, "random_seed": 5,
           "center_crop_hq_sz": 577, "all_image_color_jitter": 0.1}  # fmt: skip
    reduced = make(str(photos), **opt)
    exact = make(str(photos), exact_decode=True, **opt)
    for epoch in (0, 1):
        reduced.set_epoch(epoch)
        exact.set_epoch(epoch)
        for i, path in enumerate(reduced.get_paths()):
            r, e = reduced[i], exact[i]
            for key in ("hq", "lq"):
                assert r[key].shape == e[key].shape and r[key].dtype == e[key].dtype
                assert psnr(r[key], e[key]) >= 40, (path, key, psnr(r[key], e[key]))
            # JPEGs take the reduced path (their pixels differ a little); a PNG is
            # decoded at full size either way.
            assert torch.equal(r["hq"], e["hq"]) == path.endswith(".png"), path


def test_exact_decode_gives_dlas_pixels_on_large_photos(photos):
    ds = make(str(photos), target_size=64, scale=2, exact_decode=True)
    for i, path in enumerate(ds.get_paths()):
        ref = dlas_hq(Path(path), target=64, scale=2)
        np.testing.assert_allclose(ds[i]["hq"].numpy(), chw(ref), atol=2e-6)


def test_reduced_alt_tiles_match_the_item_size(photos):
    opt = {"target_size": 64, "scale": 2, "fetch_alt_tiled_image": True, "random_seed": 2}
    reduced = make(str(photos), **opt)
    exact = make(str(photos), exact_decode=True, **opt)
    for i in range(len(reduced)):
        r, e = reduced[i], exact[i]
        assert r["alt_hq"].shape == r["hq"].shape == (3, 64, 64)
        assert psnr(r["alt_hq"], e["alt_hq"]) >= 40
