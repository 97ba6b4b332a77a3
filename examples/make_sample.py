"""Writes a small sample corpus for the demo: a few photo-sized synthetic images in the
shapes that exercise the extractor (square, landscape, portrait, one too small, one that
is halved first, a greyscale one) plus one broken file it must report and skip.

Usage: python examples/make_sample.py DEST     (needs numpy and Pillow)
"""

import sys
from pathlib import Path

import numpy as np
from PIL import Image

SHAPES = {
    "square_1024.jpg": (1024, 1024),
    "landscape_1800x1200.jpg": (1800, 1200),
    "portrait_777x1300.png": (777, 1300),
    "tiny_600x500.jpg": (600, 500),
    "huge_6000x4000.jpg": (6000, 4000),
}


def picture(w: int, h: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.stack([x / w * 255, y / h * 255, 128 + 100 * np.sin(x / 40) * np.cos(y / 55)], -1)
    img += rng.normal(0, 8, size=img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def main(dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    for i, (name, (w, h)) in enumerate(SHAPES.items()):
        Image.fromarray(picture(w, h, i)).save(dest / name, quality=92)
    Image.fromarray(picture(900, 700, 9)).convert("L").save(dest / "grey_900x700.jpg")
    (dest / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not really a JPEG")
    print(f"make_sample: {len(SHAPES) + 2} files in {dest}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
