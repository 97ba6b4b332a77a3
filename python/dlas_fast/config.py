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

Nothing else in the section is changed. An option no dataset knows is named in a
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
    opt["phase"] = str(name).split("_")[0]
    opt["data_type"] = "img"
    mode = opt.get("mode")
    if isinstance(mode, str) and mode.endswith("mc"):
        opt["data_type"] = "mc"
        opt["mode"] = mode.replace("_mc", "")
    return opt
