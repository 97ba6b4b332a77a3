"""``torch_dataset``: TorchDataset, a torchvision dataset in DLAS's item format (docs/spec.md §5).

Needs torchvision (``pip install 'dlas_fast[torchvision]'``); without it, building the
dataset says so. The torchvision dataset reads its own files (decoding and resizing
happen in Pillow's C code, which releases the GIL), with DLAS's transforms:
``RandomResizedCrop`` + flip with ``random_crop``, else ``Resize`` + ``CenterCrop`` +
flip; then ImageNet normalisation.

Differences from DLAS, on purpose: greyscale sets (MNIST, Fashion-MNIST) come out with
3 channels (DLAS fails in the 3-channel normalisation); ``coarse_labels`` is a key only
for CIFAR-100 (DLAS puts ``None`` there otherwise, which no collate function accepts);
``LQ_path`` / ``GT_path`` are the sample's file for folder datasets and
``"<dataset>:<index>"`` otherwise (DLAS puts the string of the whole sample there).
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Mapping

import torch

from dlas_fast.datasets.files import pil_loader, read_regular
from dlas_fast.datasets.options import warn_unknown

OPTIONS = frozenset({"dataset", "kwargs", "image_size", "random_crop", "fixed_len", "offset"})

#: ``dataset`` values.
KINDS = ("mnist", "fmnist", "cifar10", "cifar100", "imagenet", "imagefolder")

_MEAN, _STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def torchvision_module():
    """torchvision, or an ImportError saying how to install it."""
    try:
        import torchvision
    except ImportError as e:
        raise ImportError(
            "dataset mode 'torch_dataset' needs torchvision, an optional extra of "
            "dlas_fast: pip install 'dlas_fast[torchvision]' (or pip install torchvision "
            "matching your torch)"
        ) from e
    return torchvision


def _cifar100_with_coarse_labels(tv):
    """torchvision's CIFAR-100 that also returns each image's coarse label."""

    class CIFAR100(tv.datasets.CIFAR100):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            # The batches are pickles in CIFAR's own format (torchvision reads them the
            # same way); only their coarse labels are taken here.
            files = self.train_list if self.train else self.test_list
            self.coarse_targets = []
            for name, _ in files:
                data = read_regular(os.path.join(self.root, self.base_folder, name), 1 << 30)
                self.coarse_targets.extend(pickle.loads(data, encoding="latin1")["coarse_labels"])

        def __getitem__(self, index: int):
            img, target = super().__getitem__(index)
            return img, target, self.coarse_targets[index]

    return CIFAR100


def _rgb(img):
    return img if img.mode == "RGB" else img.convert("RGB")


class TorchDataset(torch.utils.data.Dataset):
    """DLAS's TorchDataset, built from the same option dict: ``dataset`` (one of
    :data:`KINDS`), ``kwargs`` for its constructor, ``image_size``, ``random_crop``,
    ``fixed_len``, ``offset``.

    Items are dicts: ``lq`` = ``hq`` (float32 ``(3, S, S)``, ImageNet-normalised),
    ``labels`` (int), ``coarse_labels`` (CIFAR-100 only), ``LQ_path``, ``GT_path``.
    """

    MODE = "torch_dataset"
    OPTIONS = OPTIONS

    def __init__(self, opt: Mapping) -> None:
        self.opt = dict(opt)
        warn_unknown(self.opt, self.OPTIONS, self.MODE)
        kind = self.opt.get("dataset")
        if kind not in KINDS:
            raise ValueError(f"option 'dataset': {kind!r} is not one of {', '.join(KINDS)}")
        if "image_size" not in self.opt:
            raise ValueError(f"{self.MODE}: option 'image_size' is required")
        kwargs = dict(self.opt.get("kwargs") or {})
        if "transform" in kwargs:
            raise ValueError("option 'kwargs': 'transform' is set by torch_dataset itself")
        tv = torchvision_module()
        T = tv.transforms
        size = self.opt["image_size"]
        if self.opt.get("random_crop", False):
            steps = [T.RandomResizedCrop(size), T.RandomHorizontalFlip()]
        else:
            steps = [T.Resize(size), T.CenterCrop(size), T.RandomHorizontalFlip()]
        transform = T.Compose(
            [T.Lambda(_rgb), *steps, T.ToTensor(), T.Normalize(mean=_MEAN, std=_STD)]
        )
        classes = {
            "mnist": tv.datasets.MNIST,
            "fmnist": tv.datasets.FashionMNIST,
            "cifar10": tv.datasets.CIFAR10,
            "cifar100": _cifar100_with_coarse_labels(tv),
            "imagenet": tv.datasets.ImageNet,
            "imagefolder": tv.datasets.ImageFolder,
        }
        if kind in ("imagenet", "imagefolder"):
            # Pillow through torchvision's loader would open a FIFO named like an image
            # and wait forever: only regular files are read.
            kwargs.setdefault("loader", pil_loader)
        self.kind = kind
        self.dataset = classes[kind](transform=transform, **kwargs)
        total = len(self.dataset)
        self.len = int(self.opt.get("fixed_len", total))
        self.offset = int(self.opt.get("offset", 0))
        if not 0 <= self.offset <= self.len <= total:
            raise ValueError(
                f"options 'fixed_len' ({self.len}) and 'offset' ({self.offset}) must satisfy "
                f"0 <= offset <= fixed_len <= {total} (the dataset's length)"
            )

    def __len__(self) -> int:
        return self.len - self.offset

    def _path(self, index: int) -> str:
        samples = getattr(self.dataset, "samples", None)
        if samples is not None:
            return str(samples[index][0])
        return f"{self.kind}:{index}"

    def __getitem__(self, item: int) -> dict:
        if not 0 <= item < len(self):
            raise IndexError(f"item {item} out of range ({len(self)})")
        index = item + self.offset
        sample = self.dataset[index]
        path = self._path(index)
        out = {"lq": sample[0], "hq": sample[0], "labels": sample[1]}
        if len(sample) == 3:
            out["coarse_labels"] = sample[2]
        out["LQ_path"] = path
        out["GT_path"] = path
        return out

    def get_paths(self) -> list[str]:
        """The source file of every item, in item order (as DLAS\'s ``get_paths``)."""
        return [self._path(i + self.offset) for i in range(len(self))]

    # Pickled by its options (the CIFAR-100 class is made at run time, and a spawned
    # worker reads the dataset's files itself).
    def __getstate__(self) -> dict:
        return {"opt": self.opt}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["opt"])
