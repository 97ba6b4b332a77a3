"""One of our loading pipelines in a loop, for comparing builds of dlas_fast.

``bench_loader.py`` and ``bench_image_folder.py`` compare pipelines; this runs only
ours for a number of seconds: configuration ``a`` or ``b`` of ``bench_loader.py``
(SingleImageDataset) or ``folder-a`` / ``folder-b`` of ``bench_image_folder.py``
(ImageFolderDataset), in a DataLoader with 2 fork workers, batch 16, shuffled,
persistent workers; with ``create_dataloader``'s collate, or with ``--collate torch``
torch's default collate (a hand-built DataLoader). It prints samples/s, the CPU time
per sample of the main process and the workers together (steadier than throughput on
a shared machine), and the main process's CPU time per batch.
``benches/ab_builds.py`` alternates builds through it.

    PYTHONPATH=/tmp/new python benches/loader_loop.py b 20 --collate torch
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import dlas_fast
import torch
from dlas_fast.datasets.batch import collate

sys.path.insert(0, str(Path(__file__).parent))
import bench_image_folder  # noqa: E402
import bench_loader  # noqa: E402


def options(config: str) -> dict:
    if config.startswith("folder-"):
        return dict(bench_image_folder.CONFIGS[config.removeprefix("folder-")])
    return dict(bench_loader.CONFIGS[config])


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds the processes `pids` have used so far."""
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("config", nargs="?", default="b")
    p.add_argument("seconds", nargs="?", type=float, default=20.0)
    p.add_argument("--collate", choices=["dlas", "torch"], default="dlas")
    args = p.parse_args()
    data = Path.home() / ".cache" / "dlas_fast" / "bench_loader_data"
    if not data.is_dir():
        sys.exit(f"{data}: run benches/bench_loader.py once first (it extracts the corpus)")
    opt = dict(options(args.config), paths=str(data), random_seed=1)
    ds = dlas_fast.create_dataset(opt)
    kw = {"collate_fn": collate} if args.collate == "dlas" else {}
    loader = torch.utils.data.DataLoader(
        ds, batch_size=16, shuffle=True, num_workers=2, drop_last=True,
        generator=torch.Generator().manual_seed(0), multiprocessing_context="fork",
        persistent_workers=True, **kw,
    )  # fmt: skip
    for i, _ in enumerate(loader):  # warm-up: starts the workers, fills the slots
        if i == 10:
            break
    workers = [w.pid for w in loader._iterator._workers]
    n, t0, c0, w0 = 0, time.perf_counter(), time.process_time(), cpu_seconds(workers)
    while time.perf_counter() - t0 < args.seconds:
        for _ in loader:
            n += 1
            if time.perf_counter() - t0 >= args.seconds:
                break
    secs = time.perf_counter() - t0
    main_cpu = time.process_time() - c0
    total = main_cpu + cpu_seconds(workers) - w0
    print(f"{dlas_fast.__file__}: config {args.config}, {args.collate} collate: "
          f"{n * 16 / secs:.0f} samples/s, {total / (n * 16) * 1e6:.0f} us CPU per sample "
          f"(main process {main_cpu / n * 1e6:.0f} us per batch)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
