"""CPU time per sample of one configuration's batches, made in this process as a
DataLoader worker makes them (one thread; with ``--shared``, into shared memory as for
a batch passed on whole: fresh memory each time, since a slot is recycled only once a
main process has received the batch), without the DataLoader: the steadiest figure for
comparing two builds of the loading code (``benches/ab_builds.py --batch-cpu``).

    PYTHONPATH=/tmp/new python benches/batch_cpu.py b 150 --shared
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import dlas_fast
import torch

sys.path.insert(0, str(Path(__file__).parent))
from loader_loop import options  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("config", nargs="?", default="b")
    p.add_argument("batches", nargs="?", type=int, default=150)
    p.add_argument("--shared", action="store_true")
    args = p.parse_args()
    data = Path.home() / ".cache" / "dlas_fast" / "bench_loader_data"
    if not data.is_dir():
        sys.exit(f"{data}: run benches/bench_loader.py once first (it extracts the corpus)")
    ds = dlas_fast.create_dataset(dict(options(args.config), paths=str(data), random_seed=1))
    # As in a worker: one thread, and (with --shared) batches passed on whole.
    torch.utils.data.get_worker_info = lambda: object()
    ds.collated_as_is = args.shared
    order = torch.randperm(len(ds), generator=torch.Generator().manual_seed(0)).tolist()
    batches = [order[j : j + 16] for j in range(0, len(order) - 15, 16)]
    for b in batches[:5]:  # warm-up
        ds.__getitems__(b)
    t0 = time.process_time()
    for i in range(args.batches):
        ds.__getitems__(batches[i % len(batches)])
    cpu = (time.process_time() - t0) / (args.batches * 16) * 1e6
    shared = "shared" if args.shared else "private"
    print(f"{dlas_fast.__file__}: config {args.config}, {shared}: {cpu:.1f} us CPU per sample")
    return 0


if __name__ == "__main__":
    sys.exit(main())
