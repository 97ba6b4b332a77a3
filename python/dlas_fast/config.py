"""DLAS training configs (YAML): read a dataset section as DLAS's trainer hands it over.

A DLAS training YAML has its datasets under ``datasets:``, one section per phase name
(``train``, ``val``, ``val_2``...). DLAS's option parser adds two keys to each section
before ``create_dataset`` sees it: ``phase`` (the section name up to its first ``_``)
and ``data_type`` (``img``; a mode ending in ``_mc`` loses that suffix and gets
``mc``). :func:`dataset_options` does the same, so ``create_dataset`` receives exactly
what it would in DLAS::

    from dlas_fast import create_dataset
    from dlas_fast.config import dataset_options

    train_set = create_dataset(dataset_options("train_sr.yml", "train"))

Nothing else in the section is changed, except in a BasicSR / Real-ESRGAN config (a
section with ``type:`` and no ``mode:``), which :func:`dataset_options` reads as those
projects write it: ``type`` names the mode, ``dataroot_gt`` gives ``paths``,
``gt_size`` ``target_size``, the config's top-level ``scale`` the ``scale``,
``batch_size_per_gpu`` / ``num_worker_per_gpu`` the loader's ``batch_size`` /
``n_workers``, ``use_hflip: false`` sets ``disable_flip``; and a Real-ESRGAN config
(``model_type: RealESRGANModel``, or a section with the degradation's kernel options)
gets ``degradation: realesrgan`` with the top-level degradation settings
(``resize_prob``, ``noise_range2``...) copied in. So Real-ESRGAN's training YAML works
once its dataset ``type`` is changed to one of ours (e.g. ``imagefolder``).

An option no dataset knows is named in a
warning when the dataset is built, or raises when the section sets
``strict_options: true`` (the CLI's ``--strict`` sets it).
"""

from __future__ import annotations

import os
from collections.abc import Mapping


def load_config(path: str | os.PathLike) -> dict:
    """The whole training config at `path` (YAML) as a dict.

    Raises ``FileNotFoundError`` for a missing file and ``ValueError`` naming the file
    for YAML that does not parse or is not a mapping.
    """
    import yaml  # imported here: the extraction command never needs it

    path = os.fspath(path)
    with open(path, encoding="utf-8") as f:
        try:
            config = yaml.safe_load(f)
        except yaml.YAMLError as e:
            raise ValueError(f"{path}: not valid YAML: {e}") from None
    if not isinstance(config, dict):
        kind = type(config).__name__
        raise ValueError(f"{path}: a training config is a YAML mapping, got {kind}")
    return config


def dataset_options(config: str | os.PathLike | Mapping, name: str) -> dict:
    """The dataset section `name` of a training config (a YAML path or the loaded
    dict), with the keys DLAS's option parser adds: ``phase`` and ``data_type``.

    Raises ``ValueError`` naming the file and the sections it has when there is no
    ``datasets:`` mapping or no section called `name`.
    """
    where = os.fspath(config) if isinstance(config, (str, os.PathLike)) else "config"
    if not isinstance(config, Mapping):
        config = load_config(config)
    datasets = config.get("datasets")
    if not isinstance(datasets, Mapping) or not datasets:
        raise ValueError(f"{where}: no 'datasets:' section")
    if name not in datasets:
        raise ValueError(
            f"{where}: no dataset section {name!r}; it has: {', '.join(map(str, datasets))}"
        )
    section = datasets[name]
    if not isinstance(section, Mapping):
        raise ValueError(f"{where}: datasets.{name} is not a mapping")
    opt = dict(section)
    if "mode" not in opt and isinstance(opt.get("type"), str):
        opt = _from_basicsr(config, opt)
    opt["phase"] = str(name).split("_")[0]
    opt["data_type"] = "img"
    mode = opt.get("mode")
    if isinstance(mode, str) and mode.endswith("mc"):
        opt["data_type"] = "mc"
        opt["mode"] = mode.replace("_mc", "")
    return opt


# BasicSR section keys and the DLAS options they stand for.
_BASICSR_KEYS = {
    "type": "mode",
    "dataroot_gt": "paths",
    "gt_size": "target_size",
    "batch_size_per_gpu": "batch_size",
    "num_worker_per_gpu": "n_workers",
}


def _from_basicsr(config: Mapping, section: dict) -> dict:
    """A BasicSR / Real-ESRGAN dataset section with its keys renamed to DLAS's (a key
    already set the DLAS way wins) and, for Real-ESRGAN, the degradation's options."""
    from dlas_fast.corruptor import REALESRGAN_OPTIONS

    opt = {k: v for k, v in section.items() if k not in _BASICSR_KEYS}
    for theirs, ours in _BASICSR_KEYS.items():
        if theirs in section and ours not in opt:
            opt[ours] = section[theirs]
    if "scale" not in opt and "scale" in config:
        opt["scale"] = config["scale"]
    if section.get("use_hflip") is False and "disable_flip" not in opt:
        opt["disable_flip"] = True
    opt.pop("use_hflip", None)
    realesrgan = config.get("model_type") == "RealESRGANModel" or any(
        k in section for k in ("kernel_list", "kernel_prob", "sinc_prob", "blur_sigma")
    )
    # Real-ESRGAN's paired-data fine-tuning turns the degradation off.
    if config.get("high_order_degradation", True) is False:
        realesrgan = False
    if realesrgan and "degradation" not in opt:
        opt["degradation"] = "realesrgan"
        for key in REALESRGAN_OPTIONS:
            if key in config and key not in opt:
                opt[key] = config[key]
        # The model's losses against the sharpened ground truth want it as an output.
        usm_losses = ("l1_gt_usm", "percep_gt_usm", "gan_gt_usm")
        if "gt_usm" not in opt and any(config.get(k) is True for k in usm_losses):
            opt["gt_usm"] = True
    return opt
