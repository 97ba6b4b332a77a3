"""DLAS-style baseline for the tile-extraction job, built the way DL-Art-School runs it.

What it measures: the wall time of the extraction job of DLAS's
``codes/scripts/extract_subimages_with_ref.py`` (default options: crop sizes 256/512,
steps 128/256, threshold 128, final resize factors 1/0.5, JPEG quality 95, sources
larger than 5500 px halved first, sources whose short side is under 512 px skipped),
executed with the same machinery DLAS uses:

* a ``torch.utils.data.DataLoader`` (``batch_size=1``, identity collate) whose N worker
  processes each decode one source with OpenCV, square-crop it, resize and JPEG-encode the
  reference thumbnail and every tile, and send the encoded buffers plus tile centres back;
* the main process, which writes every tile to ``DST/<chunk>/%08d.jpg``, the thumbnail to
  ``DST/<chunk>/ref.jpg`` and a ``centers.pt`` (``{id: ((row, col), width)}``) per chunk
  with ``torch.save``.

Differences from DLAS, on purpose: tile ids restart at 1 in every chunk (the dlas_fast
format; DLAS numbers images globally) and the chunk name is the source's path relative to
SRC without its extension. Neither changes the amount of work or the write pattern.
OpenCV's own thread pool is left at its default in the workers, as in DLAS (there
``cv2.setNumThreads`` is never called); ``--cv-threads`` lets you change that to see how much
it matters.

The timer starts after the imports (torch, cv2) and covers DataLoader start-up, all the work
and all the writes. The last line printed is ``RESULT {json}`` for ``bench_extract.py``.

Run:
    python benches/dlas_style_extract.py SRC DST [--workers 2] [--overwrite]
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import shutil
import sys
import time

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

CROP_SIZES = (256, 512)
STEPS = (128, 256)
FINAL_RESIZE = (1.0, 0.5)
THRESHOLD = 128
JPEG_QUALITY = 95
HALVE_ABOVE = 5500
MIN_SHORT_SIDE = 512
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".pgm", ".tif", ".tiff", ".webp")


def list_images(root: str) -> list[str]:
    """Every image file under ``root``, recursively, in sorted order."""
    found = []
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            if name.lower().endswith(IMAGE_EXTENSIONS):
                found.append(os.path.join(dirpath, name))
    return sorted(found)


def positions(dim: int, crop: int, step: int) -> list[int]:
    """Window origins along one axis: a regular grid plus one flush with the far edge when the
    uncovered remainder exceeds the threshold."""
    starts = list(range(0, dim - crop + 1, step))
    if dim - (starts[-1] + crop) > THRESHOLD:
        starts.append(dim - crop)
    return starts


def encode_jpeg(pixels: np.ndarray) -> np.ndarray:
    ok, buf = cv2.imencode(".jpg", pixels, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise RuntimeError("cv2.imencode failed")
    return buf


class TileDataset(Dataset):
    """One item per source image: (chunk name, encoded ref, [(encoded tile, centre, width)])."""

    def __init__(self, src: str):
        self.src = src
        self.paths = list_images(src)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int):
        path = self.paths[index]
        img = cv2.imread(path, cv2.IMREAD_UNCHANGED)
        if img is None or img.ndim == 2:  # unreadable or greyscale: DLAS skips both
            return None
        h, w = img.shape[:2]
        if max(h, w) > HALVE_ABOVE:
            h, w = h // 2, w // 2
            img = cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)
        if min(h, w) < MIN_SHORT_SIDE:
            return None

        dim = min(h, w)
        top, left = (h - dim) // 2, (w - dim) // 2
        square = img[top : top + dim, left : left + dim]

        ref_side = int(CROP_SIZES[0] * FINAL_RESIZE[0])
        scale = dim / ref_side  # tile coordinates are stored in thumbnail pixels
        ref = encode_jpeg(cv2.resize(square, (ref_side, ref_side), interpolation=cv2.INTER_AREA))

        tiles = []
        for crop, step, factor in zip(CROP_SIZES, STEPS, FINAL_RESIZE, strict=True):
            if crop > dim:
                continue
            out_side = int(crop * factor)
            rows = positions(dim, crop, step)
            cols = positions(dim, crop, step)
            for r in rows:
                for c in cols:
                    window = np.ascontiguousarray(square[r : r + crop, c : c + crop])
                    small = cv2.resize(window, (out_side, out_side), interpolation=cv2.INTER_AREA)
                    centre = (int((r + crop // 2) // scale), int((c + crop // 2) // scale))
                    tiles.append((encode_jpeg(small), centre, int(crop // scale)))

        chunk = os.path.splitext(os.path.relpath(path, self.src))[0].replace(os.sep, "_")
        return chunk, ref, tiles


def first_item(batch):
    """Collate function: batches are of size one, hand the item through untouched."""
    return batch[0]


def write_bytes(folder: str, name: str, data: np.ndarray) -> None:
    # DLAS creates the folder (exist_ok) before every single file; kept for the same syscalls.
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, name), "wb") as fh:
        fh.write(data)


def init_worker(cv_threads: int | None, _worker_id: int) -> None:
    if cv_threads is not None:
        cv2.setNumThreads(cv_threads)


def run(src: str, dst: str, workers: int, cv_threads: int | None) -> dict:
    dataset = TileDataset(src)
    loader = DataLoader(
        dataset,
        batch_size=1,
        num_workers=workers,
        collate_fn=first_item,
        worker_init_fn=functools.partial(init_worker, cv_threads) if workers > 0 else None,
    )
    chunks = tiles = 0
    for item in loader:
        if item is None:
            continue
        chunk, ref, encoded_tiles = item
        if not encoded_tiles:
            continue
        folder = os.path.join(dst, chunk)
        write_bytes(folder, "ref.jpg", ref)
        centres = {}
        for tile_id, (buf, centre, width) in enumerate(encoded_tiles, start=1):
            write_bytes(folder, f"{tile_id:08d}.jpg", buf)
            centres[tile_id] = (centre, width)
        torch.save(centres, os.path.join(folder, "centers.pt"))
        chunks += 1
        tiles += len(encoded_tiles)
    return {"sources": len(dataset), "chunks": chunks, "tiles": tiles}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("src", help="folder of source images (searched recursively)")
    parser.add_argument("dst", help="output folder of chunks")
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers (default 2)")
    parser.add_argument("--overwrite", action="store_true", help="empty DST first if it exists")
    parser.add_argument(
        "--cv-threads",
        type=int,
        default=None,
        help="call cv2.setNumThreads(N) in every process (default: leave OpenCV alone, as DLAS)",
    )
    args = parser.parse_args()

    if os.path.isdir(args.dst) and os.listdir(args.dst):
        if not args.overwrite:
            print(f"{args.dst} is not empty; pass --overwrite", file=sys.stderr)
            return 2
        shutil.rmtree(args.dst)
    os.makedirs(args.dst, exist_ok=True)
    if args.cv_threads is not None:
        cv2.setNumThreads(args.cv_threads)

    start = time.perf_counter()
    stats = run(args.src, args.dst, args.workers, args.cv_threads)
    elapsed = time.perf_counter() - start

    stats.update(elapsed=elapsed, workers=args.workers, cv_threads=cv2.getNumThreads())
    print(
        f"dlas-style: {stats['sources']} sources, {stats['chunks']} chunks, "
        f"{stats['tiles']} tiles (+{stats['chunks']} refs), {elapsed:.3f} s "
        f"with {args.workers} DataLoader workers"
    )
    print("RESULT " + json.dumps(stats))
    return 0


if __name__ == "__main__":
    sys.exit(main())
