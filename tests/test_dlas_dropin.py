"""What a DLAS run calls or writes that dlas_fast must take as DLAS does:
``reset_random``, corruption names matched by substring, DLAS's no-op corruptions on
request, and the modes and options outside our scope named as such."""

from __future__ import annotations

import warnings
from pathlib import Path

import dlas_fast
import numpy as np
import pytest
import torch
from conftest import gradient, save
from dlas_fast import ImageCorruptor
from dlas_fast.corruptor import DLAS_NOOPS, resolve_name


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("dropin")
    for i in range(6):
        save(gradient(48, 40, seed=30 + i), root / f"p{i}.png")
    return root


def folder_set(folder, **opt):
    base = {"mode": "imagefolder", "paths": str(folder), "target_size": 32, "scale": 2,
            "random_seed": 5, "fixed_corruptions": ["jpeg-broad", "gaussian_blur"]}  # fmt: skip
    return dlas_fast.create_dataset(dict(base, **opt))


def photo(seed: int = 0) -> np.ndarray:
    return gradient(40, 32, seed=seed).astype(np.float32) / 255.0


# reset_random: DLAS's FID evaluator calls it before each evaluation.


def test_reset_random_on_a_dataset_gives_the_first_epochs_draws_again(folder):
    ds = folder_set(folder)
    first = [ds[i]["lq"] for i in range(len(ds))]
    ds.set_epoch(4)
    later = [ds[i]["lq"] for i in range(len(ds))]
    assert not all(a.equal(b) for a, b in zip(first, later))
    ds.reset_random()
    assert ds.epoch == 0
    assert all(a.equal(ds[i]["lq"]) for i, a in enumerate(first))
    # As the evaluator uses it: a plain DataLoader, reset before each evaluation.
    runs = []
    for _ in range(2):
        ds.reset_random()
        loader = torch.utils.data.DataLoader(ds, batch_size=3, num_workers=1)
        runs.append(torch.cat([b["lq"] for b in loader]))
    assert runs[0].equal(runs[1])


def test_reset_random_on_the_corruptor_repeats_its_calls():
    c = ImageCorruptor({"fixed_corruptions": ["noise", "jpeg-broad"], "random_seed": 9})
    img = photo()
    c.set_epoch(3)
    first = [c.corrupt_images([img])[0] for _ in range(3)]  # calls without an index
    assert not np.array_equal(first[0], first[1])  # each call its own draws
    c.reset_random()
    assert c.epoch == 0
    c.set_epoch(3)
    again = [c.corrupt_images([img])[0] for _ in range(3)]
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    # Calls with an index are keyed on it and repeat with or without a reset.
    keyed = c.corrupt_images([img], index=7)[0]
    c.reset_random()
    assert np.array_equal(c.corrupt_images([img], index=7, epoch=3)[0], keyed)


# Names: DLAS tests `"gaussian_blur" in name`, so its own scripts write gaussian_blur_3.


@pytest.mark.parametrize(
    "name,resolved",
    [("gaussian_blur_3", "gaussian_blur"), ("my_jpeg-low", None), ("lq_resampling_4x",
     "lq_resampling"), ("noise_5", "noise"), ("noisy_block_noise", "block_noise"),
     ("nonexistent", "none"), ("colour_jitter", None), ("jpeg-low", "jpeg-low")],
)  # fmt: skip
def test_names_resolve_as_dlas_matches_them(name, resolved):
    assert resolve_name(name) == resolved


def test_a_dlas_spelling_warns_and_gives_the_named_corruption():
    img = photo(1)
    with pytest.warns(UserWarning, match="'gaussian_blur_3' is read as 'gaussian_blur'"):
        c = ImageCorruptor({"fixed_corruptions": ["jpeg-medium", "gaussian_blur_3"],
                            "random_seed": 4})  # fmt: skip
    exact = ImageCorruptor({"fixed_corruptions": ["jpeg-medium", "gaussian_blur"],
                            "random_seed": 4})  # fmt: skip
    assert np.array_equal(c.corrupt_images([img], index=2)[0],
                          exact.corrupt_images([img], index=2)[0])  # fmt: skip
    with pytest.warns(UserWarning, match="random_corruptions.*'noise_5' is read as 'noise'"):
        ImageCorruptor({"random_corruptions": ["noise_5"], "num_corrupts_per_image": 1})
    # What DLAS fails on is still refused, with the known names.
    with pytest.raises(ValueError, match="jpeg-lowest"):
        ImageCorruptor({"fixed_corruptions": ["jpeg-lowest"]})


def test_a_dataset_reads_dlas_spellings_too(folder):
    with pytest.warns(UserWarning, match="is read as 'gaussian_blur'"):
        ds = folder_set(folder, fixed_corruptions=["jpeg-broad", "gaussian_blur_3"])
    assert ds[2]["lq"].equal(folder_set(folder)[2]["lq"])


# DLAS's four no-op corruptions act here, unless asked to keep DLAS's data.


@pytest.mark.parametrize("name", sorted(DLAS_NOOPS))
def test_dlas_noop_corruptions_keeps_dlas_no_ops(name):
    img = photo(2)
    real = ImageCorruptor({"fixed_corruptions": [name], "random_seed": 1})
    noop = ImageCorruptor({"fixed_corruptions": [name], "random_seed": 1,
                           "dlas_noop_corruptions": True})  # fmt: skip
    changed = any(not np.array_equal(real.corrupt_images([img], index=i)[0], img) for i in range(4))
    assert changed
    for i in range(4):
        out, entropy = noop.corrupt_images([img], return_entropy=True, index=i)
        assert np.array_equal(out[0], img) and len(entropy) == 1  # a strength, as DLAS
    # The others still act under the option.
    both = ImageCorruptor({"fixed_corruptions": [name, "greyscale"], "random_seed": 1,
                           "dlas_noop_corruptions": True})  # fmt: skip
    grey = both.corrupt_images([img], index=0)[0]
    assert np.allclose(grey[..., 0], grey[..., 1]) and not np.array_equal(grey, img)


def test_dlas_noop_corruptions_in_a_dataset(folder):
    opt = {"fixed_corruptions": ["color_shift", "interlacing"]}
    real = folder_set(folder, **opt)
    noop = folder_set(folder, dlas_noop_corruptions=True, **opt)
    plain = folder_set(folder, fixed_corruptions=["none", "none"])
    assert not real[1]["lq"].equal(plain[1]["lq"])
    assert noop[1]["lq"].equal(plain[1]["lq"])
    with pytest.raises(ValueError, match="dlas_noop_corruptions"):
        folder_set(folder, dlas_noop_corruptions="yes")


# Modes and options outside our scope say so, and what to do.

AUDIO = ["nv_tacotron", "paired_voice_audio", "fast_paired_voice_audio",
         "fast_paired_voice_audio_with_phonemes", "gpt_tts", "unsupervised_audio",
         "unsupervised_audio_with_noise", "preprocessed_mel", "grand_conjoined_voice"]  # fmt: skip


@pytest.mark.parametrize("mode", AUDIO)
def test_dlas_audio_modes_are_named_outside_the_scope(mode):
    with pytest.raises(ValueError, match=f"'{mode}' is an audio/speech mode of DLAS outside "
                                         "dlas_fast's scope.*register_dataset"):  # fmt: skip
        dlas_fast.create_dataset({"mode": mode})


def test_other_dlas_modes_and_unknown_ones(folder):
    with pytest.raises(ValueError, match="'zipfile' is a DLAS mode outside dlas_fast's scope"):
        dlas_fast.create_dataset({"mode": "zipfile"})
    with pytest.raises(ValueError, match="unknown dataset mode 'tortoise'"):
        dlas_fast.create_dataset({"mode": "tortoise"})


def test_the_labeler_option_says_what_to_use_instead(folder):
    with pytest.raises(NotImplementedError, match="labeler.*register_dataset.*ImageFolderDataset"):
        folder_set(folder, labeler={"type": "patch_labels", "label_file": "x.json"})


def test_none_of_this_warns_for_exact_names(folder):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        folder_set(folder, fixed_corruptions=["block_noise", "jpeg-low"])
