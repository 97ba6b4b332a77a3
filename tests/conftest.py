"""Shared fixtures: synthetic source images made by the tests themselves."""

from __future__ import annotations

import importlib.util
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

DATA = Path(__file__).parent / "data"


def gradient(w: int, h: int, seed: int = 0) -> np.ndarray:
    """A noisy RGB gradient, uint8 HxWx3."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.stack([x / w * 255, y / h * 255, (x + y) / (w + h) * 255], axis=-1)
    img += rng.normal(0, 12, size=img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def save(img: np.ndarray | Image.Image, path: Path, **kw) -> Path:
    if isinstance(img, np.ndarray):
        img = Image.fromarray(img)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, **kw)
    return path


def jpeg_bytes(img: np.ndarray, **kw) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", **kw)
    return buf.getvalue()


def tree_bytes(root: Path) -> dict[str, bytes]:
    """Every file under root (relative path -> content), our dotfiles excluded."""
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.relative_to(root).parts[0].startswith(".dlas_fast")
    }


@pytest.fixture(scope="session")
def golden_sources(tmp_path_factory) -> Path:
    """The golden synthetic sources, written by the golden make_sources.py (copied here)."""
    spec = importlib.util.spec_from_file_location("make_sources", DATA / "make_sources.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    dest = tmp_path_factory.mktemp("golden_src")
    for i, (name, (w, h)) in enumerate(mod.SIZES.items()):
        mod.make(w, h, i).save(dest / f"{name}.png", compress_level=1)
    return dest


@pytest.fixture(scope="session")
def golden_extracted(golden_sources, tmp_path_factory):
    import dlas_fast

    dst = tmp_path_factory.mktemp("golden_out") / "ds"
    summary = dlas_fast.extract(golden_sources, dst, threads=2)
    return dst, summary
