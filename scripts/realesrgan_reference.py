#!/usr/bin/env python3
"""Reference side for testing a native reimplementation of Real-ESRGAN's high-order
degradation pipeline: runs the REAL BasicSR 1.4.2 / Real-ESRGAN 0.3.0 code on CPU.

Setup (once; installs into ${DLAS_FAST_CACHE:-~/.cache/dlas_fast}/basicsr-ref, not the venv):
    export PATH=$HOME/.cache/dlas_fast/venv-<key>/bin:$PATH     # the dev venv (scripts/env.sh)
    bash scripts/reference-env.sh

Commands:
    python scripts/realesrgan_reference.py golden tests/golden/realesrgan
        Writes kernels.npz, stages.npz, draws.npz (see tests/golden/realesrgan/README.md).
        Takes about 3 minutes on the 2-core dev machine (measured 2m55s for reference-env.sh
        from scratch, ~10 s, plus this command): kernels.npz and stages.npz take
        seconds, draws.npz (10,000 instrumented dataset items + feed_data calls on an 80x80
        GT, one torch thread) the rest.
        Deterministic for a given torch/numpy/scipy build (all three RNGs are seeded).
    python scripts/realesrgan_reference.py check [--batch 4] [--size 256] [--threads 2]
        Sanity check: runs reference_batch_fn on random GT images (scale 4, x4plus
        options), prints output shapes and the time per batch.

As a module (e.g. from a benchmark or a test):
    import realesrgan_reference as ref        # with scripts/ on sys.path
    fn = ref.reference_batch_fn(ref.default_options(), batch_size=16)
    lq, gt, gt_usm = fn(list_of_chw_float32_rgb_tensors_in_0_1)

What reference_batch_fn does per call, all with the reference's own code:
  * per item: RealESRGANDataset.__getitem__ (its real __init__ and __getitem__; the image
    "read" is stubbed to give a 400x400 dummy, so no crop or pad happens and only the
    draws matter: hflip status, kernel1, kernel2, sinc_kernel); the given GT replaces the
    item's 'gt' (gt_via_dataset=True instead routes the given GT through the dataset's
    flip + pad/crop to 400, as training does);
  * torch.utils.data.default_collate, as the DataLoader does;
  * RealESRGANModel.feed_data on the batch, on CPU. The model is made with __new__
    (its __init__ builds networks and calls .cuda()); the attributes feed_data needs are
    set as __init__ would. The training-pair pool (_dequeue_and_enqueue) runs unless
    queue=False; its queue tensors are made on CPU (the reference calls .cuda()), and
    queue_size is rounded up to a multiple of the batch size (the reference asserts
    divisibility: 180 is not a multiple of 16). Once the pool is full, the returned batch
    comes from the pool, as in training.
  * gt_size is lowered to the GT size when the GT is smaller (the reference would raise).
  * DiffJPEG's output is made contiguous (see _ContiguousOutput: on CPU the reference's
    filter2D would otherwise fail for batch > 1); no value changes.
torch.set_num_threads is left to the caller.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import math
import os
import random
import sys
import tempfile
import time
import types
from pathlib import Path

import numpy as np
import torch

CACHE = Path(os.environ.get("DLAS_FAST_CACHE", Path.home() / ".cache" / "dlas_fast"))
REF_DIR = CACHE / "basicsr-ref"

# options/train_realesrgan_x4plus.yml (Real-ESRGAN), model-level and datasets.train-level
# keys flattened into one dict. Values only; the yml is the authority.
X4PLUS_OPTIONS = {
    # model (RealESRGANModel.feed_data)
    "scale": 4,
    "high_order_degradation": True,
    "resize_prob": [0.2, 0.7, 0.1],  # up, down, keep
    "resize_range": [0.15, 1.5],
    "gaussian_noise_prob": 0.5,
    "noise_range": [1, 30],
    "poisson_scale_range": [0.05, 3],
    "gray_noise_prob": 0.4,
    "jpeg_range": [30, 95],
    "second_blur_prob": 0.8,
    "resize_prob2": [0.3, 0.4, 0.3],
    "resize_range2": [0.3, 1.2],
    "gaussian_noise_prob2": 0.5,
    "noise_range2": [1, 25],
    "poisson_scale_range2": [0.05, 2.5],
    "gray_noise_prob2": 0.4,
    "jpeg_range2": [30, 95],
    "gt_size": 256,
    "queue_size": 180,
    # dataset (RealESRGANDataset)
    "blur_kernel_size": 21,
    "kernel_list": [
        "iso",
        "aniso",
        "generalized_iso",
        "generalized_aniso",
        "plateau_iso",
        "plateau_aniso",
    ],
    "kernel_prob": [0.45, 0.25, 0.12, 0.03, 0.12, 0.03],
    "sinc_prob": 0.1,
    "blur_sigma": [0.2, 3],
    "betag_range": [0.5, 4],
    "betap_range": [1, 2],
    "blur_kernel_size2": 21,
    "kernel_list2": [
        "iso",
        "aniso",
        "generalized_iso",
        "generalized_aniso",
        "plateau_iso",
        "plateau_aniso",
    ],
    "kernel_prob2": [0.45, 0.25, 0.12, 0.03, 0.12, 0.03],
    "sinc_prob2": 0.1,
    "blur_sigma2": [0.2, 1.5],
    "betag_range2": [0.5, 4],
    "betap_range2": [1, 2],
    "final_sinc_prob": 0.8,
    "use_hflip": True,
    "use_rot": False,
}
DATASET_KEYS = [
    "blur_kernel_size",
    "kernel_list",
    "kernel_prob",
    "sinc_prob",
    "blur_sigma",
    "betag_range",
    "betap_range",
    "blur_kernel_size2",
    "kernel_list2",
    "kernel_prob2",
    "sinc_prob2",
    "blur_sigma2",
    "betag_range2",
    "betap_range2",
    "final_sinc_prob",
    "use_hflip",
    "use_rot",
    "gt_size",
]

KERNEL_TYPES = [
    "iso",
    "aniso",
    "generalized_iso",
    "generalized_aniso",
    "plateau_iso",
    "plateau_aniso",
    "sinc",
]
MODES = ["area", "bilinear", "bicubic"]
UPDOWN = ["up", "down", "keep"]


def default_options() -> dict:
    return copy.deepcopy(X4PLUS_OPTIONS)


# ----------------------------------------------------------------------------------------
# importing the reference
# ----------------------------------------------------------------------------------------
_REF = None


def ref() -> types.SimpleNamespace:
    """Imports BasicSR / Real-ESRGAN from REF_DIR (once) and returns the modules used."""
    global _REF
    if _REF is not None:
        return _REF
    if not (REF_DIR / ".complete").is_file():
        raise SystemExit(f"{REF_DIR} is missing: run `bash scripts/reference-env.sh` first")
    if str(REF_DIR) not in sys.path:
        sys.path.insert(0, str(REF_DIR))
    # BasicSR 1.4.2 does `from torchvision.transforms.functional_tensor import rgb_to_grayscale`;
    # torchvision >= 0.17 renamed that module to _functional_tensor (same function: weights
    # 0.2989, 0.587, 0.114, result cast back to the input dtype). Alias it, nothing else.
    try:
        import torchvision.transforms.functional_tensor  # noqa: F401  (old torchvision)
    except ImportError:
        try:
            import torchvision.transforms._functional_tensor as ft
        except ImportError:
            import torchvision.transforms.functional as ft
        sys.modules["torchvision.transforms.functional_tensor"] = ft
    import basicsr
    import basicsr.data.degradations as degradations
    import basicsr.data.transforms as transforms
    import basicsr.utils.diffjpeg as diffjpeg
    import basicsr.utils.img_process_util as img_process_util
    import realesrgan
    import realesrgan.data.realesrgan_dataset as dataset
    import realesrgan.models.realesrgan_model as model
    import scipy

    _REF = types.SimpleNamespace(
        basicsr=basicsr,
        degradations=degradations,
        transforms=transforms,
        diffjpeg=diffjpeg,
        img_process_util=img_process_util,
        realesrgan=realesrgan,
        dataset=dataset,
        model=model,
        scipy=scipy,
    )
    return _REF


def versions() -> dict:
    r = ref()
    import cv2
    import torchvision

    return {
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "numpy": np.__version__,
        "scipy": r.scipy.__version__,
        "cv2": cv2.__version__,
        "basicsr": r.basicsr.__version__,
        "realesrgan": r.realesrgan.version.__version__,
        "python": sys.version.split()[0],
    }


# ----------------------------------------------------------------------------------------
# the reference batch
# ----------------------------------------------------------------------------------------
class _NoFileClient:
    """Stands in for basicsr's FileClient: the image bytes are never decoded (imfrombytes
    is stubbed during __getitem__), so any value will do."""

    def get(self, path, client_key="default"):
        return b""


class _ContiguousOutput(torch.nn.Module):
    """DiffJPEG's output is a slice of a permuted (channels-last) tensor. On CPU, torch 2.x
    reflect padding keeps that layout, so the filter2D that may follow (second blur, or the
    sinc filter after a resize) fails in its `.view(1, b * c, ...)` for batch > 1 (the same
    code runs on CUDA, whose padding returns a contiguous tensor). Making the output
    contiguous changes no value."""

    def __init__(self, jpeger):
        super().__init__()
        self.jpeger = jpeger

    def forward(self, x, quality):
        return self.jpeger(x, quality=quality).contiguous()


class RealESRGANReference:
    """Callable: list of GT tensors (C,H,W float32 RGB in [0,1]) -> (lq, gt, gt_usm)."""

    def __init__(
        self,
        opt: dict | None = None,
        batch_size: int | None = None,
        queue: bool = True,
        gt_via_dataset: bool = False,
    ):
        r = ref()
        self.opt = default_options() if opt is None else copy.deepcopy(opt)
        self.gt_via_dataset = gt_via_dataset
        self._dummy = np.zeros((400, 400, 3), np.float32)
        self._next_img = None

        # dataset, built by its own __init__ from a one-line meta_info file
        with tempfile.TemporaryDirectory() as tmp:
            meta = Path(tmp) / "meta_info.txt"
            meta.write_text("item.png\n")
            ds_opt = {k: copy.deepcopy(self.opt[k]) for k in DATASET_KEYS}
            ds_opt.update(io_backend={"type": "disk"}, dataroot_gt=tmp, meta_info=str(meta))
            self.dataset = r.dataset.RealESRGANDataset(ds_opt)
        self.dataset.file_client = _NoFileClient()

        # model, without __init__ (networks, optimisers, .cuda())
        base = r.model.RealESRGANModel

        class CPUModel(base):
            @torch.no_grad()
            def _dequeue_and_enqueue(self):
                if not hasattr(self, "queue_lr"):
                    b, c, h, w = self.lq.size()
                    if self.queue_size % b:
                        self.queue_size += b - self.queue_size % b
                    self.queue_lr = torch.zeros(self.queue_size, c, h, w)
                    _, c, h, w = self.gt.size()
                    self.queue_gt = torch.zeros(self.queue_size, c, h, w)
                    self.queue_ptr = 0
                return super()._dequeue_and_enqueue()

        if not queue:
            CPUModel._dequeue_and_enqueue = lambda self: None
        m = CPUModel.__new__(CPUModel)
        m.opt = self.opt
        m.is_train = True
        m.device = torch.device("cpu")
        m.jpeger = _ContiguousOutput(r.diffjpeg.DiffJPEG(differentiable=False))
        m.usm_sharpener = r.img_process_util.USMSharp()
        m.queue_size = self.opt.get("queue_size", 180)
        if batch_size and m.queue_size % batch_size:
            m.queue_size += batch_size - m.queue_size % batch_size
        self.model = m

    def _imfrombytes(self, content, flag="color", float32=False):
        img = self._next_img
        self._next_img = None
        return img

    def draw_item(self, gt_hwc_bgr: np.ndarray | None = None) -> dict:
        """One RealESRGANDataset.__getitem__ (kernel draws; GT routed through it if given)."""
        mod = ref().dataset
        self._next_img = self._dummy if gt_hwc_bgr is None else gt_hwc_bgr
        saved = mod.imfrombytes
        mod.imfrombytes = self._imfrombytes
        try:
            return self.dataset[0]
        finally:
            mod.imfrombytes = saved

    def collate(self, gts) -> dict:
        items = []
        for g in gts:
            if self.gt_via_dataset:
                hwc_bgr = np.ascontiguousarray(
                    g.detach().cpu().numpy().transpose(1, 2, 0)[:, :, ::-1]
                )
                items.append(self.draw_item(hwc_bgr.astype(np.float32)))
            else:
                d = self.draw_item()
                d["gt"] = g
                items.append(d)
        return torch.utils.data.default_collate(items)

    def __call__(self, gts):
        data = self.collate(gts)
        h, w = data["gt"].shape[-2:]
        if self.opt["gt_size"] > min(h, w):
            self.opt["gt_size"] = min(h, w)
        self.model.feed_data(data)
        return self.model.lq, self.model.gt, self.model.gt_usm


def reference_batch_fn(
    opt: dict | None = None,
    batch_size: int | None = None,
    queue: bool = True,
    gt_via_dataset: bool = False,
) -> RealESRGANReference:
    """Returns fn(gts) -> (lq, gt, gt_usm): one Real-ESRGAN training batch made on CPU by
    the reference code (per-item dataset kernel draws, then feed_data on the batch)."""
    return RealESRGANReference(
        opt, batch_size=batch_size, queue=queue, gt_via_dataset=gt_via_dataset
    )


# ----------------------------------------------------------------------------------------
# golden: kernels.npz
# ----------------------------------------------------------------------------------------
def _kernel_param_sets():
    """~40 kernel parameter sets: every type, odd sizes 7..21, extremes included.
    Returns rows (type, size, sig_x, sig_y, theta, beta)."""
    rs = np.random.RandomState(20240607)
    sizes = [7, 9, 11, 13, 15, 17, 19, 21]
    rows = []
    # hand-picked extremes first
    rows += [
        (0, 7, 0.2, 0.2, 0.0, np.nan),
        (0, 21, 3.0, 3.0, 0.0, np.nan),
        (1, 21, 3.0, 0.2, math.pi, np.nan),
        (1, 9, 0.2, 3.0, -math.pi, np.nan),
        (1, 15, 2.0, 1.0, math.pi / 4, np.nan),
        (2, 11, 1.5, 1.5, 0.0, 0.5),
        (2, 21, 3.0, 3.0, 0.0, 4.0),
        (3, 13, 2.5, 0.7, -math.pi / 3, 0.5),
        (3, 21, 0.3, 2.9, 2.0, 4.0),
        (4, 17, 1.0, 1.0, 0.0, 1.0),
        (4, 21, 3.0, 3.0, 0.0, 2.0),
        (5, 19, 2.8, 0.4, 1.0, 1.0),
        (5, 7, 0.2, 3.0, -2.5, 2.0),
    ]
    for i in range(27):
        t = i % 6
        size = sizes[rs.randint(len(sizes))]
        sx = rs.uniform(0.2, 3)
        iso = t in (0, 2, 4)
        sy = sx if iso else rs.uniform(0.2, 3)
        th = 0.0 if iso else rs.uniform(-math.pi, math.pi)
        if t in (0, 1):
            beta = np.nan
        elif t in (2, 3):
            beta = rs.uniform(0.5, 4)
        else:
            beta = rs.uniform(1, 2)
        rows.append((t, size, sx, sy, th, beta))
    # sinc: (cutoff, size, pad_to)
    sinc = [
        (math.pi / 5, 21, 0),
        (math.pi, 7, 0),
        (math.pi / 3, 7, 21),
        (math.pi / 2, 13, 0),
        (2.0, 11, 21),
        (0.9, 15, 0),
        (2.7, 17, 21),
        (1.3, 19, 0),
        (math.pi / 5, 9, 21),
        (3.0, 21, 21),
    ]
    return rows, sinc


def _pad_center(k: np.ndarray, n: int) -> np.ndarray:
    p = (n - k.shape[0]) // 2
    return np.pad(k, ((p, p), (p, p)))


def golden_kernels(out: Path) -> dict:
    d = ref().degradations
    rows, sinc = _kernel_param_sets()
    typ, size, sx, sy, th, beta, cutoff, pad_to, kernels = [], [], [], [], [], [], [], [], []
    for t, k, a, b, c, be in rows:
        iso = t in (0, 2, 4)
        if t in (0, 1):
            ker = d.bivariate_Gaussian(k, a, b, c, isotropic=iso)
        elif t in (2, 3):
            ker = d.bivariate_generalized_Gaussian(k, a, b, c, be, isotropic=iso)
        else:
            ker = d.bivariate_plateau(k, a, b, c, be, isotropic=iso)
        assert ker.shape == (k, k) and ker.dtype == np.float64
        typ.append(t)
        size.append(k)
        sx.append(a)
        sy.append(b)
        th.append(c)
        beta.append(be)
        cutoff.append(np.nan)
        pad_to.append(0)
        kernels.append(_pad_center(ker, 21))
    for cu, k, pt in sinc:
        ker = d.circular_lowpass_kernel(cu, k, pad_to=pt)
        assert ker.shape == ((pt, pt) if pt > k else (k, k))
        typ.append(6)
        size.append(k)
        sx.append(np.nan)
        sy.append(np.nan)
        th.append(np.nan)
        beta.append(np.nan)
        cutoff.append(cu)
        pad_to.append(pt)
        kernels.append(_pad_center(ker, 21))
    import cv2

    g = cv2.getGaussianKernel(51, 0)
    usm64 = np.dot(g, g.transpose())
    usm32 = ref().img_process_util.USMSharp().kernel[0].numpy()
    arrays = dict(
        type=np.array(typ, np.int32),
        size=np.array(size, np.int32),
        sig_x=np.array(sx),
        sig_y=np.array(sy),
        theta=np.array(th),
        beta=np.array(beta),
        cutoff=np.array(cutoff),
        pad_to=np.array(pad_to, np.int32),
        kernels=np.stack(kernels).astype(np.float64),
        type_names=np.array(KERNEL_TYPES),
        usm_kernel_f64=usm64,
        usm_kernel=usm32,
    )
    np.savez_compressed(out / "kernels.npz", **arrays)
    return arrays


# ----------------------------------------------------------------------------------------
# golden: stages.npz
# ----------------------------------------------------------------------------------------
def make_test_image(h: int = 61, w: int = 77) -> np.ndarray:
    """Deterministic textured RGB image, 3 x h x w float32 in [0, 1]: gradients, hard edges,
    one-pixel stripes, a disc, a noise patch, saturated 0 and 1 areas."""
    rs = np.random.RandomState(7)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    r = x / (w - 1)
    g = 0.5 + 0.45 * np.sin(2 * np.pi * y / (h / 1.5)) * (x / w)
    b = np.clip(1.0 - np.hypot(x - w * 0.7, y - h * 0.3) / (0.8 * w), 0, 1)
    img = np.stack([r, g, b])
    img[:, 5:20, 40:60] = [[[1.0]], [[0.1]], [[0.0]]]  # saturated block, hard edges
    img[:, 40:55, 5:25] = 0.0  # black block
    img[:, 44:50, 10:18] = 1.0  # white inside it
    img[:, 25:38, 3:30] = (np.arange(27)[None, None, :] % 2) * 0.8 + 0.1  # 1-px vertical stripes
    img[1, 2:12, 2:30] = (np.arange(10)[:, None] % 2) * 0.9  # 1-px horizontal stripes (green)
    disc = np.hypot(x - 58, y - 45) < 9
    img[:, disc] = [[0.2], [0.7], [0.95]]
    patch = rs.rand(3, 18, 22)
    img[:, 42:60, 52:74] = 0.5 * img[:, 42:60, 52:74] + 0.5 * patch  # noise-like texture
    img += 0.02 * np.sin(x * 1.7 + y * 0.9)[None]  # fine texture everywhere
    return np.clip(img, 0, 1).astype(np.float32)


@contextlib.contextmanager
def _patched(obj, name, value):
    saved = getattr(obj, name)
    setattr(obj, name, value)
    try:
        yield
    finally:
        setattr(obj, name, saved)


@torch.no_grad()
def golden_stages(out: Path, kern: dict) -> dict:
    import torch.nn.functional as F

    r = ref()
    d, ipu = r.degradations, r.img_process_util
    torch.manual_seed(0)
    img = make_test_image()
    x = torch.from_numpy(img)[None]
    a = {"input": img, "torch_version": np.array(torch.__version__)}

    # filter2D: kernels as the pipeline has them (21x21, float32), shared and grouped paths
    typ, size = kern["type"], kern["size"]
    pick = [
        int(np.nonzero((typ == 1) & (size == 21))[0][0]),  # aniso, 21x21
        int(np.nonzero((typ == 3) & (size == 13))[0][0]),  # generalized_aniso 13x13, padded
        int(np.nonzero((typ == 6) & (kern["pad_to"] == 21) & (size == 11))[0][0]),
    ]  # sinc padded to 21
    ks = torch.from_numpy(kern["kernels"][pick]).float()
    a["filter2d_kernel_index"] = np.array(pick, np.int32)
    a["filter2d_kernels"] = ks.numpy()
    a["filter2d_out"] = np.stack([ipu.filter2D(x, ks[i : i + 1])[0].numpy() for i in range(3)])
    a["filter2d_batch_out"] = ipu.filter2D(x.repeat(3, 1, 1, 1), ks).numpy()

    # F.interpolate exactly as feed_data calls it (no align_corners, no antialias)
    scales = [0.37, 0.5, 1.3, 1.5]
    sizes = [(40, 50), (90, 113)]
    a["interp_scales"] = np.array(scales)
    a["interp_sizes"] = np.array(sizes, np.int32)
    for mode in MODES:
        for s in scales:
            a[f"interp_scale_{str(s).replace('.', 'p')}_{mode}"] = F.interpolate(
                x, scale_factor=s, mode=mode
            )[0].numpy()
        for hh, ww in sizes:
            a[f"interp_size_{hh}x{ww}_{mode}"] = F.interpolate(x, size=(hh, ww), mode=mode)[
                0
            ].numpy()

    # DiffJPEG(differentiable=False) with a float quality tensor, one call on a batch
    jpeger = r.diffjpeg.DiffJPEG(differentiable=False)
    q = torch.tensor([30, 47.5, 50, 71.3, 95], dtype=torch.float32)
    a["jpeg_quality"] = q.numpy().copy()
    xb = x.repeat(5, 1, 1, 1)
    a["jpeg_out"] = jpeger(xb, quality=q).numpy()
    a["jpeg_factor"] = q.numpy().copy()  # DiffJPEG overwrote the quality tensor with its factors
    for i, qi in enumerate(a["jpeg_quality"]):  # same as one 1-element call per image
        one = jpeger(x, quality=torch.tensor([qi], dtype=torch.float32))
        assert torch.equal(one[0], torch.from_numpy(a["jpeg_out"][i])), i

    a["usm_out"] = ipu.USMSharp()(x)[0].numpy()

    # final quantisation: clamp((x*255).round(), 0, 255)/255 on out-of-range values and ties
    rin = img * 1.3 - 0.15
    ties = ((np.arange(rin[:, :8, :].size) % 256) + 0.5) / 255.0
    rin[:, :8, :] = ties.reshape(rin[:, :8, :].shape)
    rin = rin.astype(np.float32)
    a["round_in"] = rin
    rt = torch.from_numpy(rin)
    a["round_out"] = (torch.clamp((rt * 255.0).round(), 0, 255) / 255.0).numpy()

    # Poisson: vals (unique-count -> power of two) and the grey image, recorded from
    # generate_poisson_noise_pt itself: Tensor.new_tensor gets vals_list, rgb_to_grayscale
    # gives the grey image.
    post = np.round(img * 4) / 4  # few levels
    flat = np.full_like(img, 0.3)
    pin = torch.from_numpy(np.stack([img, post, flat]).astype(np.float32))
    rec = {"new_tensor": [], "gray": []}
    orig_new_tensor = torch.Tensor.new_tensor
    orig_gray = d.rgb_to_grayscale

    def new_tensor(self, data, *args, **kw):
        rec["new_tensor"].append(np.array(data, np.float64))
        return orig_new_tensor(self, data, *args, **kw)

    def gray(img, num_output_channels=1):
        o = orig_gray(img, num_output_channels=num_output_channels)
        rec["gray"].append(o.clone())
        return o

    with _patched(torch.Tensor, "new_tensor", new_tensor), _patched(d, "rgb_to_grayscale", gray):
        d.generate_poisson_noise_pt(pin, scale=torch.ones(3), gray_noise=torch.ones(3))
    assert len(rec["new_tensor"]) == 2 and len(rec["gray"]) == 1
    a["poisson_vals_input"] = pin.numpy()
    a["poisson_vals_gray"] = rec["new_tensor"][0]
    a["poisson_vals_color"] = rec["new_tensor"][1]
    a["poisson_gray_image"] = rec["gray"][0].numpy()

    # noise sample distributions (for KS tests). Flat level + a first row holding 256
    # distinct values, so the reference's own vals computation gives 256.
    levels = [0.0, 1 / 255, 0.2, 0.5, 1.0]
    samples = []
    rec["new_tensor"] = []
    for lv in levels:
        im = torch.full((1, 3, 28, 256), lv, dtype=torch.float32)
        im[:, :, 0, :] = torch.arange(256, dtype=torch.float32) / 255.0
        with _patched(torch.Tensor, "new_tensor", new_tensor):
            n = d.generate_poisson_noise_pt(im, scale=1.0, gray_noise=0)
        samples.append(n[0, :, 1:, :].reshape(-1).numpy())
    assert all(float(v[0]) == 256.0 for v in rec["new_tensor"]), rec["new_tensor"]
    a["poisson_levels"] = np.array(levels, np.float32)
    a["poisson_samples"] = np.stack(samples)
    im = torch.full((1, 3, 80, 86), 0.5, dtype=torch.float32)
    a["gauss_samples"] = (
        d.generate_gaussian_noise_pt(im, sigma=torch.tensor([10.0]), gray_noise=torch.tensor([0.0]))
        .reshape(-1)
        .numpy()
    )

    np.savez_compressed(out / "stages.npz", **a)
    return a


# ----------------------------------------------------------------------------------------
# golden: draws.npz (instrumented reference)
# ----------------------------------------------------------------------------------------
class _Proxy:
    """Module stand-in: overrides a few attributes, delegates the rest."""

    def __init__(self, target, **overrides):
        self._target = target
        self.__dict__.update(overrides)

    def __getattr__(self, name):
        return getattr(self._target, name)


class DrawRecorder:
    """Wraps the reference's own functions (module globals) to log what they are called
    with; values are passed through untouched. log is a list of (event, payload)."""

    def __init__(self, rb: RealESRGANReference):
        self.rb = rb
        self.log = []
        self._stack = contextlib.ExitStack()

    def __enter__(self):
        r, log, rb = ref(), self.log, self.rb
        d, ds, mdl = r.degradations, r.dataset, r.model
        p = self._stack.enter_context

        def wrap_biv(kind, fn, has_beta):
            def w(kernel_size, sig_x, sig_y, theta, *args, **kw):
                beta = (args[0] if args else kw["beta"]) if has_beta else np.nan
                iso = kw.get("isotropic", True)
                log.append(
                    (
                        "kernel",
                        dict(
                            kind=kind,
                            iso=iso,
                            size=kernel_size,
                            sig_x=sig_x,
                            sig_y=sig_y,
                            theta=theta,
                            beta=beta,
                        ),
                    )
                )
                return fn(kernel_size, sig_x, sig_y, theta, *args, **kw)

            return w

        p(_patched(d, "bivariate_Gaussian", wrap_biv("gaussian", d.bivariate_Gaussian, False)))
        p(
            _patched(
                d,
                "bivariate_generalized_Gaussian",
                wrap_biv("generalized", d.bivariate_generalized_Gaussian, True),
            )
        )
        p(_patched(d, "bivariate_plateau", wrap_biv("plateau", d.bivariate_plateau, True)))

        sinc = ds.circular_lowpass_kernel

        def w_sinc(cutoff, kernel_size, pad_to=0):
            log.append(("sinc", dict(cutoff=cutoff, size=kernel_size, pad_to=pad_to)))
            return sinc(cutoff, kernel_size, pad_to=pad_to)

        p(_patched(ds, "circular_lowpass_kernel", w_sinc))

        aug = ds.augment

        def w_aug(imgs, hflip=True, rotation=True, flows=None, return_status=False):
            imgs2, status = aug(imgs, hflip, rotation, flows, return_status=True)
            log.append(("augment", dict(hflip=status[0], vflip=status[1], rot90=status[2])))
            return (imgs2, status) if return_status else imgs2

        p(_patched(ds, "augment", w_aug))

        # feed_data: module globals random / np / F / filter2D / noise adders; jpeger attribute
        def w_choices(population, weights=None, *, cum_weights=None, k=1):
            res = random.choices(population, weights, cum_weights=cum_weights, k=k)
            log.append(("choices", res[0]))
            return res

        def w_choice(seq):
            res = random.choice(seq)
            log.append(("choice", res))
            return res

        p(_patched(mdl, "random", _Proxy(random, choices=w_choices, choice=w_choice)))

        def w_uniform(*args, **kw):
            res = np.random.uniform(*args, **kw)
            log.append(("uniform", dict(args=args, value=res)))
            return res

        p(_patched(mdl, "np", _Proxy(np, random=_Proxy(np.random, uniform=w_uniform))))

        F = mdl.F

        def w_interp(input, size=None, scale_factor=None, mode="nearest", **kw):
            rec = dict(size=size, scale_factor=scale_factor, mode=mode, kw=dict(kw))
            log.append(("interpolate", rec))
            return F.interpolate(input, size=size, scale_factor=scale_factor, mode=mode, **kw)

        p(_patched(mdl, "F", _Proxy(F, interpolate=w_interp)))

        f2d = mdl.filter2D

        def w_filter(img, kernel):
            m = rb.model
            tag = (
                "k1"
                if kernel is m.kernel1
                else "k2"
                if kernel is m.kernel2
                else "sinc"
                if kernel is m.sinc_kernel
                else "other"
            )
            log.append(("filter2D", tag))
            return f2d(img, kernel)

        p(_patched(mdl, "filter2D", w_filter))

        for name, kind in [
            ("random_add_gaussian_noise_pt", "gaussian"),
            ("random_add_poisson_noise_pt", "poisson"),
        ]:
            fn = getattr(mdl, name)

            def w_add(*args, _fn=fn, _kind=kind, **kw):
                log.append(("add_noise", dict(kind=_kind, kw=dict(kw))))
                return _fn(*args, **kw)

            p(_patched(mdl, name, w_add))

        for name, kind in [
            ("generate_gaussian_noise_pt", "gaussian"),
            ("generate_poisson_noise_pt", "poisson"),
        ]:
            fn = getattr(d, name)

            def w_gen(img, amount, gray_noise, _fn=fn, _kind=kind):
                log.append(
                    ("gen_noise", dict(kind=_kind, amount=amount.clone(), gray=gray_noise.clone()))
                )
                return _fn(img, amount, gray_noise)

            p(_patched(d, name, w_gen))

        jpeger = rb.model.jpeger

        def w_jpeg(x, quality):
            log.append(("jpeg", quality.clone()))  # before DiffJPEG overwrites it with factors
            return jpeger(x, quality=quality)

        p(_patched(rb.model, "jpeger", w_jpeg))
        return self

    def __exit__(self, *exc):
        self._stack.close()


def _parse_item(log) -> dict:
    """Dataset draws of one __getitem__: augment, kernel1, kernel2, [final sinc]."""
    o = {}
    ev = [e for e in log if e[0] in ("kernel", "sinc")]
    aug = [e for e in log if e[0] == "augment"]
    assert len(aug) == 1 and len(ev) in (2, 3), log
    o["hflip"] = float(aug[0][1]["hflip"])
    for tag, e in zip(("k1", "k2"), ev[:2]):
        kind, p = e
        if kind == "sinc":
            assert not p["pad_to"]
            o.update(
                {
                    f"{tag}_is_sinc": 1.0,
                    f"{tag}_type": 6.0,
                    f"{tag}_size": p["size"],
                    f"{tag}_sigma_x": np.nan,
                    f"{tag}_sigma_y": np.nan,
                    f"{tag}_theta": np.nan,
                    f"{tag}_beta": np.nan,
                    f"{tag}_omega_c": p["cutoff"],
                }
            )
        else:
            t = {"gaussian": 0, "generalized": 2, "plateau": 4}[p["kind"]] + (0 if p["iso"] else 1)
            o.update(
                {
                    f"{tag}_is_sinc": 0.0,
                    f"{tag}_type": float(t),
                    f"{tag}_size": p["size"],
                    f"{tag}_sigma_x": p["sig_x"],
                    f"{tag}_sigma_y": np.nan if p["iso"] else p["sig_y"],
                    f"{tag}_theta": np.nan if p["iso"] else p["theta"],
                    f"{tag}_beta": p["beta"],
                    f"{tag}_omega_c": np.nan,
                }
            )
    if len(ev) == 3:
        assert ev[2][0] == "sinc" and ev[2][1]["pad_to"] == 21, ev
        o.update(final_sinc=1.0, final_size=ev[2][1]["size"], final_omega_c=ev[2][1]["cutoff"])
    else:
        o.update(final_sinc=0.0, final_size=np.nan, final_omega_c=np.nan)
    return o


def _parse_feed(log, ori_hw, scale) -> dict:
    """feed_data draws of one call (batch size 1), split into stages at the interpolate calls."""
    o = {}
    interp = [i for i, e in enumerate(log) if e[0] == "interpolate"]
    assert len(interp) == 3, log
    stage_of = lambda i: sum(i > j for j in interp)  # noqa: E731  0: before 1st resize, ...
    choices = [e[1] for e in log if e[0] == "choices"]
    assert len(choices) == 2
    for n in (1, 2):
        updown = choices[n - 1]
        ip = log[interp[n - 1]][1]
        drawn = [
            e[1]
            for i, e in enumerate(log)
            if e[0] == "uniform" and e[1]["args"] and stage_of(i) == n - 1
        ]
        if updown == "keep":
            assert not drawn
            s = 1.0
        else:
            assert len(drawn) == 1
            s = drawn[0]["value"]
        if n == 1:
            assert ip["scale_factor"] == s and ip["size"] is None, ip
        else:
            assert tuple(ip["size"]) == (int(ori_hw[0] / scale * s), int(ori_hw[1] / scale * s)), ip
            o["resize2_out_h"], o["resize2_out_w"] = ip["size"]
        assert not ip["kw"], ip  # no align_corners / antialias passed
        o[f"resize{n}_type"] = float(UPDOWN.index(updown))
        o[f"resize{n}_scale"] = s
        o[f"resize{n}_mode"] = float(MODES.index(ip["mode"]))
    gens = [e[1] for e in log if e[0] == "gen_noise"]
    adds = [e[1] for e in log if e[0] == "add_noise"]
    assert len(gens) == 2 and [g["kind"] for g in gens] == [a["kind"] for a in adds]
    for n, g in ((1, gens[0]), (2, gens[1])):
        gauss = g["kind"] == "gaussian"
        o[f"noise{n}_type"] = 0.0 if gauss else 1.0
        o[f"noise{n}_sigma"] = float(g["amount"][0]) if gauss else np.nan
        o[f"noise{n}_poisson_scale"] = np.nan if gauss else float(g["amount"][0])
        o[f"noise{n}_gray"] = float(g["gray"][0])
    jpeg = [i for i, e in enumerate(log) if e[0] == "jpeg"]
    assert len(jpeg) == 2
    o["jpeg1_quality"] = float(log[jpeg[0]][1][0])
    o["jpeg2_quality"] = float(log[jpeg[1]][1][0])
    filt = [e[1] for e in log if e[0] == "filter2D"]
    assert (
        filt[0] == "k1" and filt[-1] == "sinc" and filt.count("k2") <= 1 and len(filt) in (2, 3)
    ), filt
    o["blur2_applied"] = float("k2" in filt)
    # order 0: [resize back + sinc] then JPEG; order 1: JPEG then [resize back + sinc]
    o["final_order"] = 0.0 if jpeg[1] > interp[2] else 1.0
    o["final_mode"] = float(MODES.index(log[interp[2]][1]["mode"]))
    return o


# dtype per draws.npz array: float32 for values torch drew in float32, float64 otherwise
_F32_DRAWS = {
    "noise1_sigma",
    "noise1_poisson_scale",
    "noise2_sigma",
    "noise2_poisson_scale",
    "jpeg1_quality",
    "jpeg2_quality",
}


def golden_draws(out: Path, n: int = 10000, gt_hw: int = 80, progress: bool = True) -> dict:
    """n instrumented runs of dataset __getitem__ + feed_data with batch size 1."""
    opt = default_options()
    opt["gt_size"] = gt_hw
    rb = RealESRGANReference(opt, batch_size=1)
    # Speed only, no draw is affected: USMSharp draws nothing (its 51x51 convolutions are
    # most of the time here), and flushing denormals (from the far tails of the float32 blur
    # kernels) only changes pixel values in the last bits, never a drawn value.
    rb.model.usm_sharpener = lambda x: x
    torch.set_flush_denormal(True)
    img = make_test_image(gt_hw, gt_hw)
    gt = torch.from_numpy(img)
    random.seed(1)
    np.random.seed(1)
    torch.manual_seed(1)
    cols: dict[str, list] = {}
    t0 = time.time()
    for it in range(n):
        with DrawRecorder(rb) as rec:
            data = rb.collate([gt])
            item_log = list(rec.log)
            del rec.log[:]
            rb.model.feed_data(data)
            feed_log = list(rec.log)
        row = _parse_item(item_log)
        row.update(_parse_feed(feed_log, (gt_hw, gt_hw), opt["scale"]))
        assert tuple(rb.model.lq.shape) == (1, 3, gt_hw // 4, gt_hw // 4)
        for k, v in row.items():
            cols.setdefault(k, []).append(v)
        if progress and (it + 1) % 1000 == 0:
            print(f"  draws: {it + 1}/{n} ({time.time() - t0:.0f} s)", file=sys.stderr)
    torch.set_flush_denormal(False)
    arrays = {
        k: np.array(v, np.float32 if k in _F32_DRAWS else np.float64) for k, v in cols.items()
    }
    arrays["options_json"] = np.array(json.dumps(opt, sort_keys=True))
    arrays["gt_hw"] = np.array(gt_hw)
    np.savez_compressed(out / "draws.npz", **arrays)
    return arrays


# ----------------------------------------------------------------------------------------
# CLI
# ----------------------------------------------------------------------------------------
# ----------------------------------------------------------------------------------------
# golden: pipeline.npz -- whole items through the reference's operators, with the draws
# of the native pipeline (dlas_fast) and its noise turned off
# ----------------------------------------------------------------------------------------
PIPELINE_OPTIONS = {
    "degradation": "realesrgan",
    "random_seed": 3,
    "gaussian_noise_prob": 1.0,
    "gaussian_noise_prob2": 1.0,
    "noise_range": [0, 0],
    "noise_range2": [0, 0],
}
PIPELINE_SCALE = 4
PIPELINE_SIZE = 96
PIPELINE_ITEMS = 24


def pipeline_gt(size: int = PIPELINE_SIZE) -> np.ndarray:
    """The pipeline golden's ground truth: H x W x 3 float32 texture in [0, 1]."""
    rs = np.random.RandomState(11)
    y, x = np.mgrid[0:size, 0:size].astype(np.float32)
    gt = np.stack([0.5 + 0.3 * np.sin(x / 5) * np.cos(y / 7), 0.4 + 0.3 * np.cos(x / 9),
                   0.5 + 0.2 * np.sin((x + y) / 4)], -1)  # fmt: skip
    return np.clip(gt + 0.1 * rs.rand(*gt.shape), 0, 1).astype(np.float32)


def _reference_kernel(k: dict, pad_to: int = 21) -> torch.Tensor:
    """The reference's kernel for one of dlas_fast's kernel draws, padded to 21."""
    d = ref().degradations
    if k["sinc"]:
        kern = d.circular_lowpass_kernel(k["omega"], k["size"], pad_to=False)
    else:
        iso = k["kind"] in ("iso", "generalized_iso", "plateau_iso")
        args = (k["size"], k["sigma_x"], k["sigma_y"], k["theta"])
        if k["kind"] in ("iso", "aniso"):
            kern = d.bivariate_Gaussian(*args, isotropic=iso)
        elif k["kind"].startswith("generalized"):
            kern = d.bivariate_generalized_Gaussian(*args, k["beta"], isotropic=iso)
        else:
            kern = d.bivariate_plateau(*args, k["beta"], isotropic=iso)
    p = (pad_to - k["size"]) // 2
    return torch.FloatTensor(np.pad(kern, ((p, p), (p, p))))[None]


def reference_item(gt_hwc: np.ndarray, draws: dict, scale: int, margin: int) -> np.ndarray:
    """One item's LQ image made by the reference's own operators (USMSharp, filter2D,
    F.interpolate, DiffJPEG, the final clamp and rounding), in feed_data's order and with
    its sizes, for the given draws (noise is zero), on the ground truth mirrored out by
    `margin` LQ pixels and cut back after, as dlas_fast does. H x W x 3 float32."""
    r = ref()
    F = torch.nn.functional
    filter2d, jpeger = r.img_process_util.filter2D, r.diffjpeg.DiffJPEG(differentiable=False)
    p = margin * scale
    g = np.pad(gt_hwc, ((p, p), (p, p), (0, 0)), mode="reflect")
    h, w = g.shape[:2]
    out = r.img_process_util.USMSharp()(torch.from_numpy(g.transpose(2, 0, 1).copy())[None])
    out = filter2d(out, _reference_kernel(draws["kernel1"]))
    r1 = draws["resize1"]
    out = F.interpolate(out, scale_factor=r1["scale"] if r1["updown"] != "keep" else 1,
                        mode=r1["mode"])  # fmt: skip
    out = torch.clamp(out, 0, 1)  # zero Gaussian noise, clipped
    out = jpeger(torch.clamp(out, 0, 1).contiguous(), torch.tensor([draws["jpeg1"]]))
    if draws["second_blur"]:
        out = filter2d(out.contiguous(), _reference_kernel(draws["kernel2"]))
    s2 = draws["resize2"]["scale"]
    out = F.interpolate(out, size=(int(h / scale * s2), int(w / scale * s2)),
                        mode=draws["resize2"]["mode"])  # fmt: skip
    out = torch.clamp(out, 0, 1)
    sinc = draws["final_sinc"]

    def resize_sinc(o):
        o = F.interpolate(o, size=(h // scale, w // scale), mode=draws["final_mode"])
        return filter2d(o.contiguous(), _reference_kernel(sinc)) if sinc else o

    q2 = torch.tensor([draws["jpeg2"]])
    if draws["resize_first"]:
        out = jpeger(torch.clamp(resize_sinc(out), 0, 1).contiguous(), q2)
    else:
        out = resize_sinc(jpeger(torch.clamp(out, 0, 1).contiguous(), q2))
    lq = (torch.clamp((out * 255.0).round(), 0, 255) / 255.0)[0].numpy().transpose(1, 2, 0)
    lh, lw = gt_hwc.shape[0] // scale, gt_hwc.shape[1] // scale
    return np.ascontiguousarray(lq[margin : margin + lh, margin : margin + lw])


def golden_pipeline(out: Path) -> None:
    """pipeline.npz: PIPELINE_ITEMS items of dlas_fast's draws run by the reference."""
    from dlas_fast._native import LIMITS  # noqa: F401  (dlas_fast must be importable)
    from dlas_fast.corruptor import ImageCorruptor

    margin = -(-16 // PIPELINE_SCALE)  # dlas_fast's margin: 16 HQ pixels, whole LQ ones
    corruptor = ImageCorruptor(PIPELINE_OPTIONS)
    gt = pipeline_gt()
    draws, lqs = [], []
    with torch.no_grad():
        for i in range(PIPELINE_ITEMS):
            d = corruptor.draws(index=i, epoch=0)
            draws.append(json.dumps(d, sort_keys=True))
            lqs.append(reference_item(gt, d, PIPELINE_SCALE, margin))
    np.savez_compressed(
        out / "pipeline.npz", gt=gt, lq=np.stack(lqs), draws=np.array(draws),
        options=json.dumps(PIPELINE_OPTIONS), scale=PIPELINE_SCALE, margin=margin,
    )  # fmt: skip


def cmd_golden(args):
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    # One thread: reproducible summation order, and much faster here on a loaded 2-core
    # machine (the draws run thousands of tiny ops, where two OpenMP threads contend).
    torch.set_num_threads(1)
    t0 = time.time()
    if args.only_pipeline:
        golden_pipeline(out)
        return
    print(f"reference versions: {versions()}", file=sys.stderr)
    kern = golden_kernels(out)
    print(f"kernels.npz done ({time.time() - t0:.1f} s)", file=sys.stderr)
    golden_stages(out, kern)
    print(f"stages.npz done ({time.time() - t0:.1f} s)", file=sys.stderr)
    golden_draws(out, n=args.n)
    print(f"draws.npz done ({time.time() - t0:.1f} s)", file=sys.stderr)
    golden_pipeline(out)
    print(f"pipeline.npz done ({time.time() - t0:.1f} s)", file=sys.stderr)
    (out / "versions.json").write_text(json.dumps(versions(), indent=1, sort_keys=True) + "\n")


def cmd_check(args):
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    gts = [torch.rand(3, args.size, args.size) for _ in range(args.batch)]
    fn = reference_batch_fn(default_options(), batch_size=args.batch)
    times = []
    for _ in range(args.iters):
        t0 = time.perf_counter()
        lq, gt, gt_usm = fn(gts)
        times.append(time.perf_counter() - t0)
    print(f"lq {tuple(lq.shape)} {lq.dtype}  gt {tuple(gt.shape)}  gt_usm {tuple(gt_usm.shape)}")
    print(
        f"lq range [{lq.min():.4f}, {lq.max():.4f}], levels*255 integral: "
        f"{bool(torch.all((lq * 255 - (lq * 255).round()).abs() < 1e-3))}"
    )
    print(
        f"{args.batch} x {args.size}x{args.size} GT, {args.threads} threads: "
        f"median {np.median(times) * 1e3:.0f} ms/batch "
        f"(min {min(times) * 1e3:.0f}, {args.iters} batches)"
    )


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("golden", help="write the golden files")
    g.add_argument("out_dir")
    g.add_argument("--n", type=int, default=10000, help="draws.npz sample count")
    g.add_argument("--only-pipeline", action="store_true",
                   help="write pipeline.npz alone (it follows dlas_fast's draws)")  # fmt: skip
    g.set_defaults(fn=cmd_golden)
    c = sub.add_parser("check", help="run reference_batch_fn, print shapes and time per batch")
    c.add_argument("--batch", type=int, default=4)
    c.add_argument("--size", type=int, default=256)
    c.add_argument("--threads", type=int, default=2)
    c.add_argument("--iters", type=int, default=5)
    c.set_defaults(fn=cmd_check)
    args = ap.parse_args(argv)
    args.fn(args)


if __name__ == "__main__":
    main()
