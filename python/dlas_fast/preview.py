"""``dlas-fast preview``: a PNG contact sheet of what a dataset hands the trainer.

DLAS users dump debug PNGs by editing a dataset's ``__main__`` block; this does it from
the command line, for any registered dataset::

    dlas-fast preview DATASET_DIR --out grid.png            # a chunked dataset
    dlas-fast preview --config train.yml --dataset train --out grid.png
    dlas-fast preview --config train.yml --dataset train --corruptions --out c.png

The sample sheet has one row per sample (``-n``, spread evenly over the dataset),
labelled with its file name, and one column per image the item holds: ``hq``, ``lq``
(scaled up to the HQ size, nearest neighbour, so its pixels show), the reference image
with the tile's mask drawn over it (``gt_fullsize_ref``), and any other image key
(``alt_hq``, ``alt_lq``...). A key with a leading frame or patch axis shows its first
frame or patch. Values outside ``[0, 1]`` (``normalize``, ``rgb_n1_to_1``) are mapped
back for display.

With ``--corruptions`` the sheet shows instead each corruption the dataset configures
(``fixed_corruptions`` and ``random_corruptions``; every known one when it configures
none) applied to the first sample's HQ image at several strengths, one row each. With
``degradation: realesrgan`` it shows the degradation's stages instead, one row per draw
(``-n`` of them, at most 8), each labelled with what was drawn.

A PATH without ``--config`` is read as a chunked dataset with SingleImageDataset's
defaults plus ``need_ref`` and ``strict`` (so the mask is the tile's real place);
``--option key=value`` (a YAML value) adds or overrides any option in either form.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import warnings
from collections.abc import Mapping, Sequence

import numpy as np

#: Panels shown first, in this order; other image keys follow in name order.
PANEL_ORDER = ("hq", "lq", "gt_fullsize_ref", "alt_hq", "alt_lq")
#: Image keys not shown (a smaller copy of a panel already shown).
HIDDEN = frozenset({"lq_fullsize_ref"})
#: Strengths of the ``--corruptions`` sheet.
DEFAULT_STRENGTHS = (0.0, 0.25, 0.5, 0.75, 1.0)

LABEL_H = 16
PAD = 4
BACKGROUND = 24
MASK_COLOUR = np.array([1.0, 0.15, 0.15], np.float32)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="dlas-fast preview",
        description="Write a PNG contact sheet of samples from a dataset.",
    )
    p.add_argument("path", nargs="?", help="a chunked dataset folder (without --config)")
    p.add_argument("--config", help="a DLAS training config (YAML)")
    p.add_argument("--dataset", help="the dataset section of --config (e.g. train)")
    p.add_argument("--out", default="preview.png", help="the PNG to write (preview.png)")
    p.add_argument("-n", "--samples", type=int, default=8, help="samples shown (8)")
    p.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="add or override a dataset option (VALUE is YAML), e.g. --option scale=4",
    )
    p.add_argument(
        "--corruptions",
        action="store_true",
        help="show each configured corruption at several strengths instead",
    )
    p.add_argument(
        "--strengths",
        default=",".join(str(s) for s in DEFAULT_STRENGTHS),
        help="strengths of the --corruptions sheet (0,0.25,0.5,0.75,1)",
    )
    p.add_argument("--cell", type=int, default=256, help="largest panel side in pixels (256)")
    p.add_argument("--strict", action="store_true", help="an unknown option is an error")
    return p


def dataset_opt(args: argparse.Namespace) -> dict:
    """The option dict the preview builds its dataset from."""
    import yaml

    from dlas_fast.config import dataset_options

    if args.config:
        if args.path:
            raise ValueError("give either PATH or --config/--dataset, not both")
        if not args.dataset:
            raise ValueError("--config needs --dataset (the section name, e.g. train)")
        opt = dataset_options(args.config, args.dataset)
    else:
        if not args.path:
            raise ValueError("give a dataset PATH, or --config and --dataset")
        if args.dataset:
            raise ValueError("--dataset needs --config")
        if not os.path.isdir(args.path):
            raise ValueError(f"{args.path}: not a directory")
        opt = {
            "mode": "single_image_extensible",
            "phase": "train",
            "paths": args.path,
            "need_ref": True,
            "strict": True,
            # A preview of a folder shows the same draws each time (no "drew a seed").
            "random_seed": 0,
        }
    for item in args.option:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--option {item!r}: expected KEY=VALUE")
        opt[key] = yaml.safe_load(value)
    if args.strict:
        opt["strict_options"] = True
    return opt


def _display(t) -> np.ndarray:
    """A (C,H,W) float tensor/array as an H x W x 3 float array in [0, 1]."""
    a = np.asarray(t, dtype=np.float32)
    rgb = a[:3].transpose(1, 2, 0)
    if rgb.shape[2] == 1:
        rgb = np.repeat(rgb, 3, axis=2)
    lo, hi = float(rgb.min()), float(rgb.max())
    if lo < -0.01 or hi > 1.01:
        if lo >= -1.01 and hi <= 1.01:
            rgb = (rgb + 1) / 2  # rgb_n1_to_1 / stylegan2_norm
        else:
            rgb = (rgb - lo) / max(hi - lo, 1e-6)  # another normalisation: stretch
    return np.clip(rgb, 0, 1)


def _with_mask(ref) -> np.ndarray:
    """A (4,H,W) ref (RGB + mask) as RGB with the mask's region tinted and outlined."""
    a = np.asarray(ref, dtype=np.float32)
    rgb = _display(a[:3])
    mask = a[3] > 0.5
    if not mask.any():
        return rgb
    rgb = rgb.copy()
    rgb[mask] = rgb[mask] * 0.65 + MASK_COLOUR * 0.35
    rows, cols = np.nonzero(mask.any(axis=1))[0], np.nonzero(mask.any(axis=0))[0]
    r0, r1, c0, c1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    # Thick enough to survive the sheet's shrink to a 64-pixel cell.
    t = max(1, max(rgb.shape[:2]) // 64)
    rgb[r0 : r0 + t, c0:c1] = rgb[max(r1 - t, r0) : r1, c0:c1] = MASK_COLOUR
    rgb[r0:r1, c0 : c0 + t] = rgb[r0:r1, max(c1 - t, c0) : c1] = MASK_COLOUR
    return rgb


def panels_of(item: Mapping) -> list[tuple[str, np.ndarray]]:
    """The (title, H x W x 3 image) panels of one dataset item, in display order."""
    found = {}
    for key, value in item.items():
        if key in HIDDEN or not hasattr(value, "shape") or not hasattr(value, "dtype"):
            continue
        arr = np.asarray(value)
        if arr.dtype.kind != "f" or arr.ndim not in (3, 4):
            continue
        title = key
        if arr.ndim == 4:  # frames or patches: the first one
            arr, title = arr[0], f"{key}[0]"
        if arr.shape[0] == 4 and "ref" in key:
            found[key] = (f"{title} + mask", _with_mask(arr))
        elif arr.shape[0] in (1, 3, 4):
            found[key] = (title, _display(arr))
    order = [k for k in PANEL_ORDER if k in found] + sorted(set(found) - set(PANEL_ORDER))
    return [found[k] for k in order]


def _resize_nearest(img: np.ndarray, h: int, w: int) -> np.ndarray:
    rows = (np.arange(h) * img.shape[0] // h).clip(0, img.shape[0] - 1)
    cols = (np.arange(w) * img.shape[1] // w).clip(0, img.shape[1] - 1)
    return img[rows][:, cols]


def _cell_size(img: np.ndarray, cap: int) -> tuple[int, int]:
    h, w = img.shape[:2]
    f = min(1.0, cap / max(h, w))
    return max(1, round(h * f)), max(1, round(w * f))


def compose(
    rows: Sequence[tuple[str, Sequence[tuple[str, np.ndarray]]]],
    cell: tuple[int, int],
    title: str,
) -> np.ndarray:
    """A labelled sheet (H x W x 3 uint8): a title line, then for each row its label
    line and its panels side by side, each scaled to `cell` with its title above."""
    from PIL import Image, ImageDraw, ImageFont

    ch, cw = cell
    ncols = max(len(panels) for _, panels in rows)
    width = PAD + ncols * (cw + PAD)
    row_h = LABEL_H + LABEL_H + ch + PAD
    height = LABEL_H + PAD + len(rows) * row_h
    sheet = np.full((height, width, 3), BACKGROUND, np.uint8)
    texts = [(PAD, 2, title)]
    y = LABEL_H + PAD
    for label, panels in rows:
        texts.append((PAD, y + 2, label))
        for j, (name, img) in enumerate(panels):
            x = PAD + j * (cw + PAD)
            texts.append((x, y + LABEL_H + 2, name))
            px = np.rint(_resize_nearest(img, ch, cw) * 255).astype(np.uint8)
            sheet[y + 2 * LABEL_H : y + 2 * LABEL_H + ch, x : x + cw] = px
        y += row_h
    im = Image.fromarray(sheet)
    draw = ImageDraw.Draw(im)
    font = ImageFont.load_default()
    for x, ty, text in texts:
        draw.text((x, ty), _fit(draw, font, text, width - x - PAD), fill=(235, 235, 235), font=font)
    return np.asarray(im)


def _fit(draw, font, text: str, width: int) -> str:
    """`text`, cut from the left with an ellipsis to fit `width` pixels."""
    if draw.textlength(text, font=font) <= width:
        return text
    while len(text) > 1 and draw.textlength("..." + text, font=font) > width:
        text = text[1:]
    return "..." + text


def _label(item: Mapping, index: int) -> str:
    for key in ("GT_path", "HQ_path", "LQ_path"):
        path = item.get(key)
        if isinstance(path, str):
            parts = os.path.normpath(path).split(os.sep)
            return f"#{index}  {os.path.join(*parts[-2:])}"
    return f"#{index}"


def pick(length: int, n: int) -> list[int]:
    """`n` item indices spread evenly over `length` items (all of them when fewer)."""
    if length <= 0:
        return []
    k = min(n, length)
    return [i * length // k for i in range(k)]


def sample_sheet(dataset, n: int, cap: int, title: str) -> tuple[np.ndarray, int]:
    """The sample sheet of `n` items of `dataset`; returns (sheet, samples shown)."""
    rows, cell = [], None
    for i in pick(len(dataset), n):
        item = dataset[i]
        panels = panels_of(item)
        if not panels:
            raise ValueError(f"item {i} holds no image tensor to show")
        if cell is None:
            cell = _cell_size(panels[0][1], cap)
        rows.append((_label(item, i), panels))
    if not rows:
        raise ValueError("the dataset is empty")
    return compose(rows, cell, title), len(rows)


def corruption_names(opt: Mapping) -> list[str]:
    """The corruptions a dataset section configures (each once, in order, without
    ``none``); every known corruption when it configures none."""
    from dlas_fast.corruptor import CORRUPTION_NAMES, _names

    names: list[str] = []
    for key in ("fixed_corruptions", "random_corruptions"):
        for name in _names(opt.get(key)):
            if name != "none" and name not in names:
                names.append(str(name))
    return names or [n for n in CORRUPTION_NAMES if n != "none"]


#: How many items the corruptions sheet looks at for a textured one.
_TEXTURE_CANDIDATES = 16


def texture(image: np.ndarray) -> float:
    """How much an H x W x C image varies from pixel to pixel: the mean absolute
    difference between neighbours, across and down."""
    if image.shape[0] < 2 or image.shape[1] < 2:
        return 0.0
    across = np.abs(np.diff(image, axis=1)).mean()
    down = np.abs(np.diff(image, axis=0)).mean()
    return float(across + down)


def textured_item(dataset) -> tuple[int, Mapping, np.ndarray]:
    """The most textured of the dataset's first items (a flat tile shows no
    corruption): its index, the item and its first image (H x W x 3 float32)."""
    best = None
    for index in range(min(len(dataset), _TEXTURE_CANDIDATES)):
        item = dataset[index]
        panels = panels_of(item)
        if not panels:
            raise ValueError(f"item {index} holds no image tensor to show")
        image = np.ascontiguousarray(panels[0][1], dtype=np.float32)
        score = texture(image)
        if best is None or score > best[0]:
            best = (score, index, item, image)
    _, index, item, image = best
    return index, item, image


def corruption_sheet(
    dataset, opt: Mapping, strengths: Sequence[float], cap: int
) -> tuple[np.ndarray, int]:
    """Each configured corruption, at each strength, on the HQ image of the most
    textured of the first items."""
    from dlas_fast._native import Corruptor

    if len(dataset) == 0:
        raise ValueError("the dataset is empty")
    index, item, hq = textured_item(dataset)
    blur_scale = float(opt.get("corruption_blur_scale", 1))
    from dlas_fast.corruptor import seed_of

    # The dataset's seed (drawn when the options have none), as the corruptor reads it.
    seed = seed_of(getattr(dataset, "opt", opt).get("random_seed")) or 0
    rows = []
    for name in corruption_names(opt):
        shown = [("original", hq)]
        for s in strengths:
            out = Corruptor.apply_named(name, float(s), hq, blur_scale, seed)
            shown.append((f"strength {s:g}", np.clip(out, 0, 1)))
        rows.append((name, shown))
    title = f"corruptions on {_label(item, index)}"
    return compose(rows, _cell_size(hq, cap), title), len(rows)


def _draw_label(d: Mapping) -> str:
    """A short account of one item's drawn degradation."""

    def blur(k) -> str:
        if k["sinc"]:
            return f"sinc {k['size']} w{k['omega']:.2f}"
        return f"{k['kind']} {k['size']} s{k['sigma_x']:.1f}"

    def noise(n) -> str:
        kind = f"gauss {n['sigma']:.0f}" if n["gaussian"] else f"poisson {n['scale']:.2f}"
        return kind + (" grey" if n["gray"] else "")

    r1, r2 = d["resize1"], d["resize2"]
    final = "resize+sinc, jpeg" if d["resize_first"] else "jpeg, resize+sinc"
    parts = [
        blur(d["kernel1"]),
        f"{r1['mode']} x{r1['scale']:.2f}",
        noise(d["noise1"]),
        f"q{d['jpeg1']:.0f}",
        "| " + (blur(d["kernel2"]) if d["second_blur"] else "no blur"),
        f"{r2['mode']} x{r2['scale']:.2f}",
        noise(d["noise2"]),
        f"| {final} q{d['jpeg2']:.0f}",
    ]
    return "  ".join(parts)


def degradation_sheet(dataset, opt: Mapping, rows: int, cap: int) -> tuple[np.ndarray, int]:
    """The Real-ESRGAN degradation's stages on the HQ image of the most textured of the
    first items: one row per draw (items 0, 1, ... of the dataset's key)."""
    from dlas_fast._native import realesrgan_stages
    from dlas_fast.corruptor import ImageCorruptor

    if len(dataset) == 0:
        raise ValueError("the dataset is empty")
    index, item, hq = textured_item(dataset)
    options = dict(getattr(dataset, "opt", opt))
    options.pop("gt_usm", None)
    corruptor = ImageCorruptor(options)
    scale = int(options.get("scale", 1) or 1)
    chw = np.ascontiguousarray(hq.transpose(2, 0, 1))
    sheet_rows = []
    for i in range(min(rows, 8)):
        stages = realesrgan_stages(corruptor.native, chw, scale, 0, i)
        shown = [("hq", hq)] + [(name, img.transpose(1, 2, 0)) for name, img in stages]
        label = f"draw {i}: " + _draw_label(corruptor.draws(index=i, epoch=0))
        sheet_rows.append((label, [(n, np.clip(a, 0, 1)) for n, a in shown]))
    title = f"realesrgan degradation (scale {scale}) on {_label(item, index)}"
    return compose(sheet_rows, _cell_size(hq, cap), title), len(sheet_rows)


def write_png(sheet: np.ndarray, out: str) -> None:
    """Writes `sheet` to `out` through a temporary file (never a half-written PNG)."""
    from PIL import Image

    folder = os.path.dirname(os.path.abspath(out))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".dlas_fast-preview-", suffix=".png", dir=folder)
    try:
        # mkstemp makes the file 0600; a PNG gets the mode the user's umask gives.
        mask = os.umask(0)
        os.umask(mask)
        os.fchmod(fd, 0o666 & ~mask)
        with os.fdopen(fd, "wb") as f:
            Image.fromarray(sheet).save(f, format="PNG")
        os.replace(tmp, out)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def main(argv: Sequence[str] | None = None) -> int:
    """``dlas-fast preview``; returns the exit status (0 written; 2 bad usage, options
    or paths; 1 a sample that could not be loaded or another failure)."""
    args = _parser().parse_args(argv)
    from dlas_fast._native import DlasError

    try:
        if args.samples < 1 or args.cell < 8:
            raise ValueError("-n must be >= 1 and --cell >= 8")
        strengths = [float(s) for s in args.strengths.split(",") if s.strip()]
        if not strengths or not all(0 <= s <= 1 for s in strengths):
            raise ValueError(f"--strengths {args.strengths!r}: numbers in [0, 1]")
        opt = dataset_opt(args)
        from dlas_fast.registry import create_dataset

        with warnings.catch_warnings():
            warnings.simplefilter("default")
            dataset = create_dataset(opt)
        source = args.config and f"{args.config} [{args.dataset}]" or args.path
        title = f"{opt.get('mode')}: {source}"
        if args.corruptions and opt.get("degradation") is not None:
            sheet, rows = degradation_sheet(dataset, opt, args.samples, args.cell)
            what = f"{rows} draws of the degradation's stages"
        elif args.corruptions:
            sheet, rows = corruption_sheet(dataset, opt, strengths, args.cell)
            what = f"{rows} corruptions x {len(strengths)} strengths"
        else:
            sheet, rows = sample_sheet(dataset, args.samples, args.cell, title)
            what = f"{rows} samples"
        write_png(sheet, args.out)
    except (ValueError, FileNotFoundError, NotImplementedError) as e:
        print(f"dlas-fast preview: error: {e}", file=sys.stderr)
        return 2
    except (DlasError, OSError) as e:
        print(f"dlas-fast preview: error: {e}", file=sys.stderr)
        return 1
    print(f"wrote {args.out}: {what}, {sheet.shape[1]}x{sheet.shape[0]} px")
    return 0
