"""DLAS training configs: a dataset section read from the YAML, as DLAS's trainer hands
it over, builds the dataset unchanged; unknown options are named, or refused with
``strict_options``."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
from conftest import gradient, save
from dlas_fast import create_dataset
from dlas_fast.config import dataset_options, load_config

# Shaped like a DLAS training config (codes/options/train/*.yml): top-level trainer
# settings around the `datasets:` sections.
CONFIG = """\
name: sr_test
use_tb_logger: true
model: extensibletrainer
scale: 2
gpu_ids: [0]
start_step: -1
checkpointing_enabled: true
fp16: false
wandb: false

datasets:
  train:
    name: my_photos
    n_workers: 4
    batch_size: 16
    mode: imagefolder
    paths: [{photos}]
    weights: [1]
    target_size: 64
    scale: 2
    force_multiple: 1
    fixed_corruptions: [jpeg-broad]
    random_corruptions: [noise-5, none]
    num_corrupts_per_image: 1
    corrupt_before_downsize: true
    use_shuffle: true
  val_2:
    name: my_chunks
    mode: single_image_extensible_mc
    paths: {photos}
    target_size: 64
    scale: 2
    batch_size: 2

networks:
  generator:
    type: generator
    which_model_G: RRDBNet
path:
  pretrain_model_generator: ~
train:
  niter: 100000
  val_freq: 500
"""


@pytest.fixture(scope="module")
def config(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("cfg")
    for i in range(3):
        save(gradient(80, 72, seed=i), root / "photos" / f"p{i}.jpg")
    path = root / "train.yml"
    path.write_text(CONFIG.format(photos=root / "photos"))
    return path


def test_a_section_gets_the_keys_dlas_adds_and_nothing_else_changes(config):
    whole = load_config(config)
    opt = dataset_options(config, "train")
    assert opt["phase"] == "train" and opt["data_type"] == "img"
    assert {k: v for k, v in opt.items() if k not in ("phase", "data_type")} == whole["datasets"][
        "train"
    ]
    # The phase is the section name up to its first "_"; "_mc" modes lose the suffix.
    val = dataset_options(whole, "val_2")
    assert val["phase"] == "val"
    assert (val["mode"], val["data_type"]) == ("single_image_extensible", "mc")


def test_the_section_builds_its_dataset_without_a_warning(config):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ds = create_dataset(dataset_options(config, "train"))
    assert len(ds) == 3
    item = ds[0]
    assert tuple(item["hq"].shape) == (3, 64, 64) and tuple(item["lq"].shape) == (3, 32, 32)


def test_an_unknown_option_is_named_in_a_warning(config):
    opt = dataset_options(config, "train")
    opt["targt_size"] = 128
    with pytest.warns(UserWarning, match="targt_size"):
        create_dataset(opt)


def test_a_misspelt_option_gets_a_suggestion_at_the_callers_line(config):
    opt = dataset_options(config, "train")
    opt["targt_size"] = 128
    opt["zz_unrelated"] = 1
    with pytest.warns(UserWarning, match="targt_size") as seen:
        create_dataset(opt)  # the line the warning must name
    message = str(seen[0].message)
    assert "targt_size (did you mean `target_size`?)" in message, message
    assert "zz_unrelated are not used" in message, message  # nothing close: no guess
    assert seen[0].filename == __file__, seen[0].filename


@pytest.mark.parametrize(
    "mode,extra",
    [
        ("imagefolder", {}),
        ("single_image_extensible", {}),
        ("multi_frame_extensible", {"num_frames": 1}),
        ("multiscale", {"hq_tile_size": 16, "num_scales": 2, "scale": 2}),
        ("stylegan2", {"path": None, "target_size": 32}),
        ("fullimage", {"dataroot_GT": None, "min_tile_size": 32, "target_size": 32}),
        ("torch_dataset", {"dataset": "imagefolder", "image_size": 32}),
    ],
)
def test_strict_options_makes_it_an_error_in_every_dataset(config, mode, extra):
    photos = str(config.parent / "photos")
    opt = {"mode": mode, "paths": photos, "target_size": 32, "scale": 1, **extra}
    for key in ("path", "dataroot_GT"):
        if key in opt:
            opt[key] = photos
            del opt["paths"]
    opt.update(strict_options=True, colour_jiter=0.1)
    with pytest.raises(ValueError, match="colour_jiter"):
        create_dataset(opt)


def test_config_errors_name_the_file_and_the_sections(config, tmp_path):
    with pytest.raises(ValueError, match=r"no dataset section 'test'.*train, val_2"):
        dataset_options(config, "test")
    bad = tmp_path / "bad.yml"
    bad.write_text("datasets: [unclosed\n")
    with pytest.raises(ValueError, match="bad.yml"):
        dataset_options(bad, "train")
    empty = tmp_path / "empty.yml"
    empty.write_text("name: x\n")
    with pytest.raises(ValueError, match="empty.yml: no 'datasets:'"):
        dataset_options(empty, "train")
    with pytest.raises(FileNotFoundError):
        dataset_options(tmp_path / "missing.yml", "train")
