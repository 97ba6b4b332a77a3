"""Every benchmark of docs/benchmarks.md, with the arguments its figures were measured
with, one after another: each prints its command and its tables, which are the
document's. The corpus is made first when it is missing (``benches/corpus.sh``).

    python benches/run_all.py                  # everything (about an hour on 2 cores)
    python benches/run_all.py --only extract loader
    python benches/run_all.py --list           # the commands, without running them
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).parent
PHOTOS = Path.home() / ".cache" / "dlas_fast" / "photos"
#: The corpus with its PNGs (``benches/corpus.sh --png``).
PHOTOS_PNG = PHOTOS.with_name("photos_mixed")

#: (name, arguments of the script after ``benches/``), in the document's order.
BENCHES = [
    ("extract", ["bench_extract.py", "--runs", "7", "--threads", "2", "--tmp", "/dev/shm"]),
    ("extract-repeat", ["bench_extract.py", "--repeat", "3", "--runs", "3", "--threads", "2",
                        "--tmp", "/dev/shm", "--no-decode-only"]),
    ("loader", ["bench_loader.py", "--runs", "7", "--batches", "330"]),
    ("image-folder", ["bench_image_folder.py", "--runs", "5", "--batches", "300"]),
    ("multi-frame", ["bench_multi_frame.py", "--runs", "3"]),
    ("raw-photos", ["bench_raw_photos.py", "--runs", "3", "--batches", "30"]),
    ("raw-photos-png", ["bench_raw_photos.py", "--dataset", "imagefolder", "--runs", "1",
                        "--batches", "30", "--photos", str(PHOTOS_PNG)]),
    ("index", ["bench_index.py", "--runs", "3", "--dlas"]),
    ("realesrgan", ["bench_realesrgan.py", "--batches", "3", "--runs", "3",
                    "--loader-batches", "60"]),
    ("worker-rss", ["bench_worker_rss.py"]),
    ("resume", ["bench_resume.py", "--runs", "5"]),
    ("shards", ["bench_shards.py", "--runs", "3", "--batches", "200", "--open-latency-ms", "1"]),
]  # fmt: skip


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--only", nargs="+", choices=[name for name, _ in BENCHES])
    p.add_argument("--list", action="store_true", help="print the commands only")
    args = p.parse_args()
    chosen = [(n, a) for n, a in BENCHES if not args.only or n in args.only]
    if args.list:
        for _, argv in chosen:
            print("python benches/" + " ".join(argv))
        return 0
    if not PHOTOS.is_dir():
        subprocess.run(["bash", str(HERE / "corpus.sh"), str(PHOTOS)], check=True)
    if any(n == "raw-photos-png" for n, _ in chosen) and not PHOTOS_PNG.is_dir():
        subprocess.run(["bash", str(HERE / "corpus.sh"), "--png", str(PHOTOS_PNG)], check=True)
    if any(n == "realesrgan" for n, _ in chosen):
        # The reference implementation it is measured against, installed once.
        subprocess.run(["bash", str(HERE.parent / "scripts" / "reference-env.sh")], check=True)
    failed = []
    for name, argv in chosen:
        print(f"\n## {name}: python benches/{' '.join(argv)}\n", flush=True)
        start = time.monotonic()
        code = subprocess.run([sys.executable, str(HERE / argv[0]), *argv[1:]]).returncode
        print(f"\n({name}: {time.monotonic() - start:.0f} s, exit {code})", flush=True)
        if code:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
