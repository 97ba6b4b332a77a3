"""Side-by-side benchmark of the tile-extraction job: dlas_fast vs DLAS-style vs the codec floor.

What it measures, on one corpus of source images and in one invocation:

* ``ours``: ``dlas-fast extract SRC DST --threads N --overwrite`` (whole-process wall time);
* ``dlas-style``: ``dlas_style_extract.py SRC DST --workers N``, the OpenCV pipeline run the
  way DL-Art-School runs it (DataLoader workers, main process writing files and centers.pt);
* ``floor: full`` and ``floor: decode-encode``: ``codec_floor.py SRC --workers N --mode ...``,
  the least OpenCV work that yields the same tile pixels, without writes or IPC;
* ``floor: decode only``: ``codec_floor.py --mode decode``, decoding every source and nothing
  else (shows how much of the floor is decoding).

Runs are interleaved (run i of every pipeline before run i+1 of any, in a rotating order) so
that a shared, noisy machine spreads its noise over all of them. Every run writes to a fresh
temporary DST; all of them are deleted after the last run (on ext4, deleting thousands of
files slows the next file creations down, which would charge one run's clean-up to the next).
Nothing is dropped from the page cache: the corpus is read once up front, so every run sees
warm input.

Seconds: for the Python baselines the time the script measures itself (after its imports of
torch/cv2, which a long job pays once); for ``ours`` the wall time of the whole process, which
includes its start-up. The whole-process wall time of every pipeline is reported too. Input
megapixels are the sum of width*height over every image in the corpus (PIL header reads),
including the ones the job skips, as every pipeline decodes (or at least opens) those too.

Prints the exact command line, a per-run log and a markdown table ready for a README;
``--json FILE`` also writes everything as JSON.

``--repeat N`` runs every pipeline over N copies of the corpus (hard links, under new
names, in a temporary folder beside the outputs): a long job's steady state, where each
worker has long since mapped its buffers, rather than a short job's first touches.

Run:
    python benches/bench_extract.py [--corpus DIR] [--runs 3] [--threads 2] [--repeat N]
                                    [--dlas-fast CMD | --skip-ours] [--json FILE] [--tmp DIR]
The default corpus is $DLAS_FAST_PHOTOS or ~/.cache/dlas_fast/photos; build it with
``benches/corpus.sh DEST``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

HERE = Path(__file__).resolve().parent
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".pgm", ".tif", ".tiff", ".webp")
OURS = "ours"
DLAS = "dlas-style"
FLOOR_FULL = "floor: full"
FLOOR_CODEC = "floor: decode-encode"
FLOOR_DECODE = "floor: decode only"


def default_corpus() -> Path:
    env = os.environ.get("DLAS_FAST_PHOTOS")
    return Path(env) if env else Path.home() / ".cache" / "dlas_fast" / "photos"


def list_images(root: Path) -> list[Path]:
    found = []
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            if name.lower().endswith(IMAGE_EXTENSIONS):
                found.append(Path(dirpath) / name)
    return sorted(found)


def repeated_corpus(images: list[Path], copies: int, parent: str | None) -> Path:
    """A new folder holding ``copies`` hard links (or copies, across file systems) of each
    image, named ``rK_<name>``."""
    folder = Path(tempfile.mkdtemp(prefix="bench_extract_corpus_", dir=parent))
    for k in range(copies):
        for i, path in enumerate(images):
            target = folder / f"r{k}_{i:05d}_{path.name}"
            try:
                os.link(path, target)
            except OSError:
                shutil.copyfile(path, target)
    return folder


def corpus_info(paths: list[Path]) -> dict:
    pixels = 0
    nbytes = 0
    for path in paths:
        with Image.open(path) as im:  # header only, no pixel decode
            w, h = im.size
        pixels += w * h
        nbytes += path.stat().st_size
    return {"files": len(paths), "megapixels": pixels / 1e6, "megabytes": nbytes / 1e6}


def warm_page_cache(paths: list[Path]) -> None:
    for path in paths:
        with open(path, "rb") as fh:
            while fh.read(1 << 20):
                pass


def count_outputs(dst: Path) -> dict:
    counts = {"tiles": 0, "refs": 0, "centers": 0, "chunks": 0}
    if not dst.is_dir():
        return counts
    for _dirpath, _dirs, files in os.walk(dst):
        if "centers.pt" in files or "ref.jpg" in files:
            counts["chunks"] += 1
        for name in files:
            if name == "ref.jpg":
                counts["refs"] += 1
            elif name == "centers.pt":
                counts["centers"] += 1
            elif name.lower().endswith(".jpg"):
                counts["tiles"] += 1
    return counts


def parse_result(stdout: str) -> dict | None:
    for line in reversed(stdout.splitlines()):
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT ") :])
    return None


def build_pipelines(args, ours_cmd: list[str] | None, corpus: Path) -> list[dict]:
    py = args.python
    n = str(args.threads)
    src = str(corpus)
    pipes = []
    if ours_cmd is not None:
        pipes.append(
            {
                "name": OURS,
                "argv": lambda dst: [*ours_cmd, "extract", src, dst, "--threads", n, "--overwrite"],
                "writes": True,
                "tiles": True,
                "self_timed": False,
            }
        )
    dlas_script = str(HERE / "dlas_style_extract.py")
    floor_script = str(HERE / "codec_floor.py")
    pipes.append(
        {
            "name": DLAS,
            "argv": lambda dst: [py, dlas_script, src, dst, "--workers", n, "--overwrite"],
            "writes": True,
            "tiles": True,
            "self_timed": True,
        }
    )
    for name, mode in (
        (FLOOR_FULL, "full"),
        (FLOOR_CODEC, "decode-encode"),
        (FLOOR_DECODE, "decode"),
    ):
        if name == FLOOR_DECODE and args.no_decode_only:
            continue
        pipes.append(
            {
                "name": name,
                "argv": lambda dst, m=mode: [py, floor_script, src, "--workers", n, "--mode", m],
                "writes": False,
                "tiles": mode != "decode",
                "self_timed": True,
            }
        )
    return pipes


def run_once(pipe: dict, tmp_root: str) -> dict:
    tmp = tempfile.mkdtemp(prefix="run_", dir=tmp_root)
    try:
        dst = os.path.join(tmp, "out")
        argv = pipe["argv"](dst)
        start = time.perf_counter()
        proc = subprocess.run(argv, check=False, capture_output=True, text=True)
        wall = time.perf_counter() - start
        if proc.returncode != 0:
            sys.stderr.write(proc.stdout + proc.stderr)
            raise SystemExit(f"{pipe['name']} failed ({proc.returncode}): {shlex.join(argv)}")
        result = parse_result(proc.stdout) if pipe["self_timed"] else None
        record = {"wall": wall, "argv": argv}
        if result is not None:
            record["seconds"] = result["elapsed"]
            record["tiles"] = result.get("tiles")
            record["refs"] = result.get("refs", result.get("chunks"))
            if "phase_seconds" in result:
                record["phase_seconds"] = result["phase_seconds"]
        else:
            record["seconds"] = wall
        if not pipe["tiles"]:
            record["tiles"] = record["refs"] = None
        if pipe["writes"]:
            counts = count_outputs(Path(dst))
            record["written"] = counts
            record["tiles"] = counts["tiles"]
            record["refs"] = counts["refs"]
        return record
    finally:
        # Outside the timed region: settle the writeback of this run's output so that it
        # does not land in the next run. This flushes, it does not drop the page cache.
        # The output is kept until every run is over: on ext4, creating files soon after
        # deleting thousands makes the inode allocator scan the recently deleted ones
        # (`recently_deleted` in the kernel), which would charge one run's clean-up to
        # whichever pipeline runs next.
        os.sync()


def run_all(pipes: list[dict], runs: int, outputs: str) -> dict[str, list[dict]]:
    """Runs every pipeline `runs` times, interleaved in a rotating order."""
    records: dict[str, list[dict]] = {p["name"]: [] for p in pipes}
    for i in range(runs):
        shift = i % len(pipes)
        for pipe in pipes[shift:] + pipes[:shift]:
            rec = run_once(pipe, outputs)
            records[pipe["name"]].append(rec)
            print(
                f"run {i + 1}/{runs} {pipe['name']:<22} {rec['seconds']:8.3f} s "
                f"(wall {rec['wall']:.3f} s, tiles {rec.get('tiles')})",
                flush=True,
            )
    return records


def summarise(name: str, records: list[dict], corpus: dict) -> dict:
    secs = [r["seconds"] for r in records]
    walls = [r["wall"] for r in records]
    best = min(secs)
    tiles = records[-1].get("tiles")
    refs = records[-1].get("refs")
    summary = {
        "name": name,
        "runs": secs,
        "wall_runs": walls,
        "min": best,
        "median": statistics.median(secs),
        "wall_min": min(walls),
        "wall_median": statistics.median(walls),
        "tiles": tiles,
        "refs": refs,
        "mp_per_s": corpus["megapixels"] / best,
        "tiles_per_s": (tiles / best) if tiles else None,
    }
    if any("phase_seconds" in r for r in records):
        phases = [r["phase_seconds"] for r in records if "phase_seconds" in r]
        summary["phase_seconds_median"] = {
            key: statistics.median(p[key] for p in phases) for key in phases[0]
        }
    return summary


def ratio(a: float, b: float) -> float:
    return a / b if b else float("nan")


def markdown(summaries: dict, ratios: dict, corpus: dict, args) -> str:
    lines = [
        (
            f"Corpus: {corpus['files']} images, {corpus['megapixels']:.1f} MP, "
            f"{corpus['megabytes']:.1f} MB; {args.threads} workers/threads; "
            f"{args.runs} runs each, interleaved; warm page cache."
        ),
        "",
        "| pipeline | min s | median s | wall min s | input MP/s | tiles | tiles/s |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for s in summaries.values():
        tiles = "-" if s["tiles"] is None else str(s["tiles"])
        tps = "-" if s["tiles_per_s"] is None else f"{s['tiles_per_s']:.0f}"
        lines.append(
            f"| {s['name']} | {s['min']:.3f} | {s['median']:.3f} | {s['wall_min']:.3f} | "
            f"{s['mp_per_s']:.1f} | {tiles} | {tps} |"
        )
    if ratios:
        lines += ["", "| ratio | from min | from median |", "|---|---:|---:|"]
        for label, (r_min, r_med) in ratios.items():
            lines.append(f"| {label} | {r_min:.2f}x | {r_med:.2f}x |")
    lines += [
        "",
        (
            "Seconds: Python baselines report their own elapsed time (after imports); "
            "`ours` is whole-process wall time. MP/s and tiles/s use the min."
        ),
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=None, help="folder of source images")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2, help="threads/workers/processes")
    parser.add_argument("--dlas-fast", default="dlas-fast", help="command for our extractor")
    parser.add_argument("--skip-ours", action="store_true", help="run the baselines only")
    parser.add_argument("--python", default=sys.executable, help="interpreter for the baselines")
    parser.add_argument("--tmp", default=None, help="parent folder of the per-run DST folders")
    parser.add_argument("--json", type=Path, default=None, help="also write results here")
    parser.add_argument(
        "--repeat", type=int, default=1, help="run over this many copies of the corpus"
    )
    parser.add_argument(
        "--no-decode-only", action="store_true", help="skip the decode-only floor pipeline"
    )
    args = parser.parse_args()

    command_line = shlex.join([sys.executable, *sys.argv])
    print(f"command: {command_line}")

    corpus_dir = args.corpus or default_corpus()
    images = list_images(corpus_dir) if corpus_dir.is_dir() else []
    if not images:
        print(
            f"no images in corpus {corpus_dir}.\n"
            "Build it with `benches/corpus.sh DEST` (from the project folder), then "
            "pass --corpus DEST or set DLAS_FAST_PHOTOS=DEST "
            "(default: ~/.cache/dlas_fast/photos).",
            file=sys.stderr,
        )
        return 2

    ours_cmd = None
    if not args.skip_ours:
        ours_cmd = shlex.split(args.dlas_fast)
        exe = ours_cmd[0]
        if not (os.path.isfile(exe) and os.access(exe, os.X_OK)) and shutil.which(exe) is None:
            print(
                f"cannot find our extractor `{exe}`; pass --dlas-fast CMD or --skip-ours",
                file=sys.stderr,
            )
            return 2
        # What build is measured: the codec, its SIMD level, the optimisation.
        version = subprocess.run([*ours_cmd, "--version"], capture_output=True, text=True)
        print("build: " + "; ".join(version.stdout.split("\n")).strip("; "))

    if args.repeat < 1:
        print("--repeat must be at least 1", file=sys.stderr)
        return 2
    copies = None
    if args.repeat > 1:
        copies = repeated_corpus(images, args.repeat, args.tmp)
        images = list_images(copies)
    try:
        return run_benchmark(args, command_line, ours_cmd, images, copies or corpus_dir)
    finally:
        if copies is not None:
            shutil.rmtree(copies, ignore_errors=True)


def run_benchmark(args, command_line: str, ours_cmd, images: list[Path], corpus_dir: Path) -> int:
    corpus = corpus_info(images)
    corpus["path"] = str(args.corpus or default_corpus())
    corpus["repeat"] = args.repeat
    warm_page_cache(images)
    copies = f", {args.repeat} copies of each" if args.repeat > 1 else ""
    print(
        f"corpus: {corpus['path']} ({corpus['files']} images{copies}, "
        f"{corpus['megapixels']:.1f} MP, {corpus['megabytes']:.1f} MB), page cache warmed"
    )

    pipes = build_pipelines(args, ours_cmd, corpus_dir)
    load_before = os.getloadavg()
    outputs = tempfile.mkdtemp(prefix="bench_extract_", dir=args.tmp)
    try:
        records = run_all(pipes, args.runs, outputs)
    finally:
        shutil.rmtree(outputs, ignore_errors=True)
    load_after = os.getloadavg()

    summaries = {name: summarise(name, recs, corpus) for name, recs in records.items()}

    warnings = []
    tile_counts = {s["tiles"] for s in summaries.values() if s["tiles"] is not None}
    if len(tile_counts) > 1:
        warnings.append(
            "pipelines disagree on the tile count: "
            + ", ".join(f"{n}={s['tiles']}" for n, s in summaries.items() if s["tiles"] is not None)
        )

    ratios = {}
    if OURS in summaries:
        ours = summaries[OURS]
        dlas = summaries[DLAS]
        ratios["DLAS-style / ours (speed-up)"] = (
            ratio(dlas["min"], ours["min"]),
            ratio(dlas["median"], ours["median"]),
        )
        for name in (FLOOR_FULL, FLOOR_CODEC):
            fl = summaries[name]
            ratios[f"ours / {name}"] = (
                ratio(ours["min"], fl["min"]),
                ratio(ours["median"], fl["median"]),
            )
    for name in (FLOOR_FULL, FLOOR_CODEC):
        dlas = summaries[DLAS]
        fl = summaries[name]
        ratios[f"DLAS-style / {name}"] = (
            ratio(dlas["min"], fl["min"]),
            ratio(dlas["median"], fl["median"]),
        )

    table = markdown(summaries, ratios, corpus, args)
    print()
    print(table)
    for text in warnings:
        print(f"WARNING: {text}")
    print(
        f"\nload average before {load_before[0]:.2f}, after {load_after[0]:.2f} "
        f"(on {os.cpu_count()} CPUs)"
    )

    if args.json:
        report = {
            "command": command_line,
            "host": {
                "platform": platform.platform(),
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
                "loadavg_before": load_before,
                "loadavg_after": load_after,
            },
            "corpus": corpus,
            "threads": args.threads,
            "runs": args.runs,
            "pipelines": summaries,
            "ratios": {k: {"from_min": a, "from_median": b} for k, (a, b) in ratios.items()},
            "records": records,
            "warnings": warnings,
            "markdown": table,
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")
        print(f"JSON written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
