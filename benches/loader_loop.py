"""One loading pipeline in a loop, for comparing two builds of dlas_fast side by side.

``bench_loader.py`` compares pipelines; this runs only ours (configuration ``a`` or
``b`` of that benchmark, a DataLoader with 2 fork workers, batch 16, shuffled,
``create_dataloader``'s collate, persistent workers) for a number of seconds and
prints samples/s and the main process's CPU time per batch. Alternate two builds (two
``pip install --target`` folders on ``PYTHONPATH``) a few rounds to compare them on a
noisy machine:

    for r in 1 2 3; do for b in /tmp/old /tmp/new; do
        PYTHONPATH=$b python benches/loader_loop.py b 20; done; done
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import dlas_fast
import torch
from dlas_fast.datasets.batch import collate

sys.path.insert(0, str(Path(__file__).parent))
import bench_loader  # noqa: E402


def main() -> int:
    config = sys.argv[1] if len(sys.argv) > 1 else "b"
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 20.0
    data = Path.home() / ".cache" / "dlas_fast" / "bench_loader_data"
    if not data.is_dir():
        sys.exit(f"{data}: run benches/bench_loader.py once first (it extracts the corpus)")
    opt = dict(bench_loader.CONFIGS[config], paths=str(data), random_seed=1)
    ds = dlas_fast.create_dataset(opt)
    loader = torch.utils.data.DataLoader(
        ds, batch_size=16, shuffle=True, num_workers=2, drop_last=True,
        generator=torch.Generator().manual_seed(0), multiprocessing_context="fork",
        collate_fn=collate, persistent_workers=True,
    )  # fmt: skip
    for i, _ in enumerate(loader):  # warm-up: starts the workers, fills the slots
        if i == 10:
            break
    n, t0, c0 = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - t0 < seconds:
        for _ in loader:
            n += 1
            if time.perf_counter() - t0 >= seconds:
                break
    secs = time.perf_counter() - t0
    cpu = (time.process_time() - c0) / n * 1e6
    print(f"{dlas_fast.__file__}: config {config}: {n * 16 / secs:.0f} samples/s, "
          f"main process {cpu:.0f} us CPU per batch")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
