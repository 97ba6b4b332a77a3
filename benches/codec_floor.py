"""Codec floor for the tile-extraction job: the least work that still yields every tile's pixels.

What it measures: with the same number of processes as the extractor under test (a
``multiprocessing.Pool`` of N, default 2), how long OpenCV alone needs to decode every source
and JPEG-encode (quality 95) every image the extraction job produces: one 256x256 reference
thumbnail per usable source plus every tile of the default DLAS geometry (crop sizes 256/512,
steps 128/256, threshold 128, final sizes 256/256, sources over 5500 px halved, sources with
a short side under 512 px or greyscale skipped). Nothing is written to disk, nothing is sent
back to the parent but counters, there is no DataLoader. An extractor cannot do the same work
with the same codec much faster than this, so ``extractor time / floor time`` says how much
overhead is left around the codec.

Modes (``--mode``):

* ``decode-encode`` (the pure codec cost): decode every source, then encode, for the
  reference and for every tile, a 256x256 window cut straight out of the centre square at the
  tile's origin, with no resizing at all (same number of encodes of the same size).
* ``full``: decode, halve oversized sources, centre-crop, INTER_AREA-resize the reference and
  every tile to 256x256, encode; i.e. the whole job minus file writing and inter-process
  transfer. The resizes count here: the tile pixels do not exist without them.
* ``decode``: decode every source and nothing else (where the decoding share of the floor
  comes from in wall-clock terms).

Every task times its own phases (decode, halve, resize, encode) with ``perf_counter``; their
sums over all sources are printed as CPU-side seconds, which splits the floor between
decoding and encoding. With ``--workers 0`` everything runs in this process, giving an
uncontended split. Sources are handed out largest first (by header size) so that the pool
does not end on one big image; that is part of "the minimum". OpenCV's thread pool is left at
its default unless ``--cv-threads`` is given.

The last line printed is ``RESULT {json}`` for ``bench_extract.py``.

Run:
    python benches/codec_floor.py SRC [--workers 2] [--mode full|decode-encode|decode]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import time
from functools import partial

import cv2
from PIL import Image

CROP_SIZES = (256, 512)
STEPS = (128, 256)
FINAL_RESIZE = (1.0, 0.5)
THRESHOLD = 128
JPEG_QUALITY = 95
HALVE_ABOVE = 5500
MIN_SHORT_SIDE = 512
REF_SIDE = 256
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".pgm", ".tif", ".tiff", ".webp")
MODES = ("decode-encode", "full", "decode")
PHASES = ("decode", "halve", "resize", "encode")


def list_images(root: str) -> list[str]:
    found = []
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            if name.lower().endswith(IMAGE_EXTENSIONS):
                found.append(os.path.join(dirpath, name))
    return sorted(found)


def header_pixels(path: str) -> int:
    try:
        with Image.open(path) as im:
            return im.size[0] * im.size[1]
    except OSError:
        return 0


def positions(dim: int, crop: int, step: int) -> list[int]:
    starts = list(range(0, dim - crop + 1, step))
    if dim - (starts[-1] + crop) > THRESHOLD:
        starts.append(dim - crop)
    return starts


def process(path: str, mode: str) -> dict:
    """Handle one source; returns counters and per-phase seconds."""
    times = dict.fromkeys(PHASES, 0.0)
    out = {"decoded": 0, "used": 0, "refs": 0, "tiles": 0, "bytes": 0, "times": times}
    params = [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]
    clock = time.perf_counter

    t = clock()
    img = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    times["decode"] += clock() - t
    if img is None:
        return out
    out["decoded"] = 1
    if mode == "decode" or img.ndim == 2:
        return out

    h, w = img.shape[:2]
    if max(h, w) > HALVE_ABOVE:
        h, w = h // 2, w // 2
        if mode == "full":
            t = clock()
            img = cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)
            times["halve"] += clock() - t
        # decode-encode keeps the full-size pixels: tile origins below are in halved
        # coordinates and a 256 window at any of them still fits inside the bigger image.
    if min(h, w) < MIN_SHORT_SIDE:
        return out
    out["used"] = 1

    dim = min(h, w)
    full_h, full_w = img.shape[:2]
    side = min(full_h, full_w)
    top, left = (full_h - side) // 2, (full_w - side) // 2
    square = img[top : top + side, left : left + side]

    def encode(pixels) -> None:
        t = clock()
        ok, buf = cv2.imencode(".jpg", pixels, params)
        times["encode"] += clock() - t
        if not ok:
            raise RuntimeError(f"cv2.imencode failed on {path}")
        out["bytes"] += len(buf)

    def resized(pixels, out_side: int):
        if pixels.shape[0] == out_side:  # factor-1 tiles need no resize at all
            return pixels
        t = clock()
        small = cv2.resize(pixels, (out_side, out_side), interpolation=cv2.INTER_AREA)
        times["resize"] += clock() - t
        return small

    if mode == "full":
        encode(resized(square, REF_SIDE))
    else:
        encode(square[:REF_SIDE, :REF_SIDE])
    out["refs"] = 1

    for crop, step, factor in zip(CROP_SIZES, STEPS, FINAL_RESIZE, strict=True):
        if crop > dim:
            continue
        out_side = int(crop * factor)
        starts = positions(dim, crop, step)
        for r in starts:
            for c in starts:
                if mode == "full":
                    encode(resized(square[r : r + crop, c : c + crop], out_side))
                else:
                    encode(square[r : r + out_side, c : c + out_side])
                out["tiles"] += 1
    return out


def init_process(cv_threads: int | None) -> None:
    if cv_threads is not None:
        cv2.setNumThreads(cv_threads)


def run(src: str, mode: str, workers: int, cv_threads: int | None) -> dict:
    paths = list_images(src)
    paths.sort(key=header_pixels, reverse=True)
    job = partial(process, mode=mode)
    if workers <= 0:
        init_process(cv_threads)
        results = [job(p) for p in paths]
    else:
        with multiprocessing.Pool(
            workers, initializer=init_process, initargs=(cv_threads,)
        ) as pool:
            results = list(pool.imap_unordered(job, paths, chunksize=1))
    totals = {"sources": len(paths), "decoded": 0, "used": 0, "refs": 0, "tiles": 0, "bytes": 0}
    phase_seconds = dict.fromkeys(PHASES, 0.0)
    for res in results:
        for key in ("decoded", "used", "refs", "tiles", "bytes"):
            totals[key] += res[key]
        for key, value in res["times"].items():
            phase_seconds[key] += value
    totals["phase_seconds"] = phase_seconds
    return totals


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("src", help="folder of source images (searched recursively)")
    parser.add_argument("--workers", type=int, default=2, help="pool processes; 0 = in-process")
    parser.add_argument("--mode", choices=MODES, default="full")
    parser.add_argument(
        "--cv-threads",
        type=int,
        default=None,
        help="call cv2.setNumThreads(N) in every process (default: OpenCV's own choice)",
    )
    args = parser.parse_args()

    start = time.perf_counter()
    stats = run(args.src, args.mode, args.workers, args.cv_threads)
    elapsed = time.perf_counter() - start

    stats.update(elapsed=elapsed, mode=args.mode, workers=args.workers)
    ph = stats["phase_seconds"]
    print(
        f"codec floor [{args.mode}]: {stats['sources']} sources ({stats['decoded']} decoded, "
        f"{stats['used']} used), {stats['tiles']} tiles + {stats['refs']} refs encoded, "
        f"{stats['bytes'] / 1e6:.1f} MB of JPEG, {elapsed:.3f} s with {args.workers} processes"
    )
    print(
        "  summed phase seconds: "
        + ", ".join(f"{name} {ph[name]:.3f}" for name in PHASES)
        + f" (total {sum(ph.values()):.3f})"
    )
    print("RESULT " + json.dumps(stats))
    return 0


if __name__ == "__main__":
    sys.exit(main())
