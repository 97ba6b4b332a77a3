"""The ``on_error`` policy of the datasets that read files: ``skip`` (default) puts the
next loadable item in place of a bad one, warns once per file and lists it;
``raise`` raises an error naming the file. Batch sizes stay fixed."""

from __future__ import annotations

import warnings
from pathlib import Path

import dlas_fast
import pytest
import torch
from conftest import gradient, save
from dlas_fast.datasets.batch import collate


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "imgs"
    for i in range(6):
        save(gradient(40, 40, seed=i), root / f"{i}.png")
    (root / "2.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    (root / "4.png").write_bytes(b"")
    return root


def folder_ds(root, **kw):
    opt = {"mode": "imagefolder", "paths": str(root), "target_size": 32, "scale": 2,
           "disable_flip": True}  # fmt: skip
    return dlas_fast.create_dataset(dict(opt, **kw))


def test_skip_substitutes_the_next_item_and_warns_once(folder):
    ds = folder_ds(folder)
    assert ds.on_error == "skip"
    with pytest.warns(UserWarning, match=r"2\.png"):
        got = ds[2]
    assert torch.equal(got["hq"], ds[3]["hq"]) and got["HQ_path"].endswith("3.png")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the same file warns only once
        assert torch.equal(ds[2]["hq"], got["hq"])
    assert ds.skipped_files == [str(folder / "2.png")]
    with pytest.warns(UserWarning, match=r"4\.png"):
        assert ds[4]["HQ_path"].endswith("5.png")
    with pytest.raises(dlas_fast.DecodeError, match=r"2\.png"):
        folder_ds(folder, on_error="raise")[2]


def test_batches_stay_full(folder):
    ds = folder_ds(folder)
    with pytest.warns(UserWarning):
        batch = collate(ds.__getitems__([0, 1, 2, 3]))
    assert batch["hq"].shape == (4, 3, 32, 32)
    assert batch["HQ_path"][2].endswith("3.png")
    with pytest.warns(UserWarning):
        loader = torch.utils.data.DataLoader(ds, batch_size=3, collate_fn=collate)
        sizes = [len(b["hq"]) for b in loader]
    assert sizes == [3, 3]


def test_a_dataset_of_bad_files_fails_with_the_last_error(tmp_path):
    root = tmp_path / "bad"
    for i in range(3):
        save(gradient(20, 20), root / f"{i}.png")
        (root / f"{i}.png").write_bytes(b"")
    ds = folder_ds(root)
    with pytest.warns(UserWarning), pytest.raises(dlas_fast.DlasError, match="on_error='skip'"):
        ds[0]


def test_every_file_reading_dataset_has_the_policy(tmp_path, folder):
    chunked = tmp_path / "ds"
    save(gradient(600, 600, seed=5), tmp_path / "src" / "one.png")
    dlas_fast.extract(tmp_path / "src", chunked, crop_sz=[256], step=[256], resize_final_img=[1])
    (chunked / "one" / "00000003.jpg").write_bytes(b"broken")
    single = dlas_fast.create_dataset({"mode": "single_image_extensible", "paths": str(chunked)})
    with pytest.warns(UserWarning, match=r"00000003\.jpg"):
        assert single[2]["GT_path"].endswith("00000004.jpg")
    ms = dlas_fast.create_dataset({"mode": "multiscale", "paths": [str(folder)], "hq_tile_size": 8,
                                   "num_scales": 2, "scale": 1})  # fmt: skip
    with pytest.warns(UserWarning, match=r"2\.png"):
        assert ms[2]["GT_path"].endswith("3.png")
    sg = dlas_fast.create_dataset({"mode": "stylegan2", "path": str(folder), "target_size": 16})
    with pytest.warns(UserWarning, match=r"2\.png"):
        assert sg[2]["GT_path"].endswith("3.png")
    full = dlas_fast.create_dataset({"mode": "fullimage", "dataroot_GT": str(folder),
                                     "phase": "val", "scale": 2})  # fmt: skip
    with pytest.warns(UserWarning, match=r"2\.png"):
        assert full[2]["HQ_path"].endswith("3.png")
