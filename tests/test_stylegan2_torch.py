"""Stylegan2Dataset and TorchDataset (docs/spec.md §5 ``stylegan2``, ``torch_dataset``). Their
data is made here: an image folder, and small datasets in torchvision's own on-disk
formats. Nothing is downloaded."""

from __future__ import annotations

import pickle
import struct
import sys
from pathlib import Path

import dlas_fast
import numpy as np
import pytest
import torch
import torchvision  # a dev requirement (the optional extra of torch_dataset)
from conftest import gradient, save
from PIL import Image

T = torchvision.transforms


@pytest.fixture()
def faces(tmp_path: Path) -> Path:
    root = tmp_path / "faces"
    save(gradient(90, 60, seed=1), root / "a.jpg", quality=95)
    save(gradient(40, 70, seed=2), root / "sub" / "b.png")
    save(gradient(64, 64, seed=3)[..., 0], root / "grey.png")
    rgba = np.dstack([gradient(50, 50, seed=4), np.full((50, 50, 1), 100, np.uint8)])
    save(rgba, root / "sub" / "c.webp", lossless=True)
    (root / "notes.txt").write_text("x")
    save(gradient(20, 20), root / "skip.bmp")  # not one of stylegan2's extensions
    return root


def sg2(root, **kw):
    return dlas_fast.create_dataset(dict({"mode": "stylegan2", "path": str(root),
                                          "target_size": 32, "aug_prob": 0}, **kw))  # fmt: skip


def test_stylegan2_lists_by_extension_and_matches_torchvision(faces):
    ds = sg2(faces)
    names = [Path(p).relative_to(faces).as_posix() for p in ds.get_paths()]
    assert names == ["a.jpg", "grey.png", "sub/b.png", "sub/c.webp"]
    ref = T.Compose([T.Lambda(lambda im: im.convert("RGB")), T.Resize(32), T.CenterCrop(32),
                     T.ToTensor()])  # fmt: skip
    for i, path in enumerate(ds.get_paths()):
        out = ds[i]
        assert out["hq"] is out["lq"] and out["GT_path"] == path
        assert out["hq"].shape == (3, 32, 32) and out["hq"].dtype == torch.float32
        want = ref(Image.open(path))
        # PIL resizes in 8-bit fixed point, torch in float: a step apart at most.
        assert (out["hq"] - want).abs().max() <= 1.5 / 255, path
        assert (out["hq"] - want).abs().mean() < 0.3 / 255


def test_stylegan2_random_resized_crop_and_transparency(faces):
    ds = sg2(faces, aug_prob=1.0, random_seed=1)
    a = ds[0]["hq"]
    assert a.shape == (3, 32, 32)
    assert torch.equal(a, ds[0]["hq"])  # seeded
    ds.set_epoch(1)
    assert not torch.equal(a, ds[0]["hq"])
    centre = sg2(faces)[0]["hq"]
    assert not torch.equal(a, centre)
    rgba = sg2(faces, transparent=True)
    out = rgba[3]
    assert out["hq"].shape == (4, 32, 32)
    assert torch.allclose(out["hq"][3], torch.full((32, 32), 100 / 255), atol=1 / 255)
    assert torch.allclose(rgba[0]["hq"][3], torch.ones(32, 32))  # no alpha: opaque
    grey = sg2(faces)[1]["hq"]
    assert torch.equal(grey[0], grey[1]) and torch.equal(grey[1], grey[2])


def test_stylegan2_errors_name_the_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no images in .*empty"):
        sg2(tmp_path / "empty")
    with pytest.raises(ValueError, match="not a folder"):
        sg2(tmp_path / "missing")


def write_mnist(root: Path, n: int = 12, folder: str = "MNIST") -> tuple[np.ndarray, np.ndarray]:
    """MNIST's raw idx files, as torchvision reads them."""
    raw = root / folder / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, n, dtype=np.uint8)
    for split in ("train", "t10k"):
        (raw / f"{split}-images-idx3-ubyte").write_bytes(
            struct.pack(">IIII", 0x803, n, 28, 28) + images.tobytes()
        )
        (raw / f"{split}-labels-idx1-ubyte").write_bytes(
            struct.pack(">II", 0x801, n) + labels.tobytes()
        )
    return images, labels


def test_torch_dataset_mnist_comes_out_rgb_and_normalised(tmp_path):
    images, labels = write_mnist(tmp_path)
    ds = dlas_fast.create_dataset({"mode": "torch_dataset", "dataset": "mnist", "image_size": 28,
                                   "kwargs": {"root": str(tmp_path), "train": True}})  # fmt: skip
    assert len(ds) == 12
    out = ds[3]
    assert out["hq"] is out["lq"] and out["hq"].shape == (3, 28, 28)
    assert out["labels"] == int(labels[3]) and "coarse_labels" not in out
    assert out["GT_path"] == out["LQ_path"] == "mnist:3"
    mean = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)
    raw = out["hq"] * std + mean
    flipped = torch.from_numpy(images[3][:, ::-1].copy()).float() / 255
    plain = torch.from_numpy(images[3]).float() / 255
    assert any(torch.allclose(raw[c], x, atol=1e-5) for x in (plain, flipped) for c in range(3))
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=4)))
    assert batch["hq"].shape == (4, 3, 28, 28) and batch["labels"].tolist() == labels[:4].tolist()


def test_torch_dataset_fixed_len_offset_and_fmnist(tmp_path):
    write_mnist(tmp_path, folder="FashionMNIST")
    ds = dlas_fast.create_dataset({"mode": "torch_dataset", "dataset": "fmnist", "image_size": 16,
                                   "random_crop": True, "fixed_len": 10, "offset": 4,
                                   "kwargs": {"root": str(tmp_path)}})  # fmt: skip
    assert len(ds) == 6 and ds[0]["GT_path"] == "fmnist:4"
    assert ds[5]["hq"].shape == (3, 16, 16)
    with pytest.raises(IndexError):
        ds[6]
    with pytest.raises(ValueError, match="fixed_len"):
        dlas_fast.create_dataset({"mode": "torch_dataset", "dataset": "fmnist", "image_size": 16,
                                  "fixed_len": 99, "kwargs": {"root": str(tmp_path)}})  # fmt: skip


def test_torch_dataset_imagefolder_paths(tmp_path):
    for cls in ("cat", "dog"):
        for i in range(2):
            save(gradient(40, 30, seed=i), tmp_path / "imgs" / cls / f"{i}.png")
    opt = {"mode": "torch_dataset", "dataset": "imagefolder", "image_size": 24,
           "kwargs": {"root": str(tmp_path / "imgs")}}  # fmt: skip
    ds = dlas_fast.create_dataset(opt)
    out = ds[2]
    assert out["labels"] == 1 and out["GT_path"].endswith("dog/0.png")
    assert out["hq"].shape == (3, 24, 24)


def test_torch_dataset_cifar100_coarse_labels(tmp_path, monkeypatch):
    # CIFAR's files are pickles of dicts; torchvision checks their md5 sums against
    # the published ones, which synthetic files cannot match.
    import torchvision.datasets.cifar as cifar

    monkeypatch.setattr(cifar.CIFAR10, "_check_integrity", lambda self: True)
    monkeypatch.setattr(cifar, "check_integrity", lambda *a, **k: True)
    base = tmp_path / "cifar-100-python"
    base.mkdir()
    rng = np.random.default_rng(1)
    for name in ("train", "test"):
        entry = {"data": rng.integers(0, 256, (5, 3072), dtype=np.uint8),
                 "fine_labels": [1, 2, 3, 4, 5], "coarse_labels": [10, 11, 12, 13, 14]}  # fmt: skip
        (base / name).write_bytes(pickle.dumps(entry))
    (base / "meta").write_bytes(pickle.dumps({"fine_label_names": [str(i) for i in range(100)]}))
    ds = dlas_fast.create_dataset({"mode": "torch_dataset", "dataset": "cifar100", "image_size": 32,
                                   "kwargs": {"root": str(tmp_path), "train": False}})  # fmt: skip
    out = ds[2]
    assert out["labels"] == 3 and out["coarse_labels"] == 12
    assert out["hq"].shape == (3, 32, 32)
    back = pickle.loads(pickle.dumps(ds))  # spawned workers get the dataset pickled
    assert back[4]["coarse_labels"] == 14


def test_torch_dataset_without_torchvision_says_how_to_install(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "torchvision", None)
    with pytest.raises(ImportError, match=r"pip install 'dlas_fast\[torchvision\]'"):
        dlas_fast.create_dataset({"mode": "torch_dataset", "dataset": "mnist", "image_size": 28,
                                  "kwargs": {"root": str(tmp_path)}})  # fmt: skip
    with pytest.raises(ValueError, match="not one of"):
        dlas_fast.create_dataset({"mode": "torch_dataset", "dataset": "svhn", "image_size": 8})


def test_stylegan2_reduced_decoding_is_close_to_a_full_decode(tmp_path):
    root = tmp_path / "big"
    save(gradient(900, 700, seed=1), root / "a.jpg", quality=92)
    save(gradient(400, 1000, seed=2), root / "b.jpg", quality=92, subsampling=0)
    for aug in (0.0, 1.0):
        reduced = sg2(root, target_size=48, aug_prob=aug, random_seed=3)
        exact = sg2(root, target_size=48, aug_prob=aug, random_seed=3, exact_decode=True)
        for i in range(len(reduced)):
            r, e = reduced[i]["hq"], exact[i]["hq"]
            assert r.shape == e.shape == (3, 48, 48)
            mse = float(((r - e) ** 2).mean())
            assert 0 < mse and 10 * np.log10(1 / mse) >= 40, (i, aug, mse)


SIZES = [((97, 131), (32, 45)), ((40, 30), (120, 90)), ((64, 64), (64, 64)), ((5, 700), (2, 256)),
         ((1000, 3), (100, 1))]  # fmt: skip


@pytest.mark.parametrize("src,dst", SIZES)
def test_native_resize_is_pils_antialiased_bilinear(src, dst):
    # torch's kernel (what the dataset used before) has PIL's weights; so does ours. PIL
    # rounds to 8 bits between its two passes, hence a step apart at most.
    from dlas_fast._native import resize_antialias

    rng = np.random.default_rng(sum(src) + sum(dst))
    img = rng.integers(0, 256, size=(*src, 3), dtype=np.uint8)
    img[: src[0] // 2] //= 3  # an edge, as well as noise
    got = torch.from_numpy(resize_antialias(img, *dst))
    assert got.shape == (3, *dst) and got.dtype == torch.float32
    pil = Image.fromarray(img).resize(dst[::-1], Image.BILINEAR)
    pil = torch.from_numpy(np.asarray(pil).astype(np.float32)).permute(2, 0, 1)
    assert (got - pil).abs().max() <= 1
    if dst != (100, 1):  # torch gets this one wrong (a constant column)
        want = torch.nn.functional.interpolate(
            torch.from_numpy(img).permute(2, 0, 1)[None].float(), size=dst, mode="bilinear",
            antialias=True, align_corners=False)[0].round().clamp(0, 255)  # fmt: skip
        # The same weights; float sums in another order can land a .5 the other way.
        assert (got - want).abs().max() <= 1
        assert (got != want).float().mean() < 0.01
