"""Benchmark of reading a pack (docs/shards.md) against the loose chunk folders.

The dataset: the loading benchmark's (``benches/bench_loader.py --data``, the photo
corpus extracted with the default options), packed once with ``dlas_fast.pack`` into
--shards (shards of --shard-size). Each measurement runs in a fresh process, the page
cache warm; runs of the two sources are interleaved, --runs of each.

* ``index start``: ``create_dataset`` of SingleImageDataset (``need_ref``, ``strict``):
  for the loose folders, from their fresh index cache (one stat per chunk folder and
  centers.pt); for the pack, from its sidecars (no cache);
* ``loading``: ``create_dataloader``, batch 16, 2 worker processes, plain
  configuration (``target_size`` 256, ``scale`` 4, ``need_ref``), samples/s over
  --batches batches after a warm-up of 10; and the same through a hand-built
  ``torch.utils.data.DataLoader(ds, batch_size=16, num_workers=2, shuffle=True)``;
* with ``--open-latency-ms X``: the same, with every ``openat`` of the measured process
  and its workers delayed X ms by ``strace --seccomp-bpf -e inject=openat:delay_enter``
  (a network file system's cost per open; only opens are traced, so other system calls
  run untouched).

Run:
    python benches/bench_shards.py [--data DIR] [--shards DIR] [--runs 3]
                                   [--batches 200] [--open-latency-ms 1]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

import dlas_fast

CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
import torch, dlas_fast
root, what, batches = sys.argv[1], sys.argv[2], int(sys.argv[3])
opt = {"mode": "single_image_extensible", "paths": root, "target_size": 256, "scale": 4,
       "need_ref": True, "strict": True, "random_seed": 1, "batch_size": 16,
       "n_workers": 2}
t = time.perf_counter()
ds = dlas_fast.create_dataset(opt)
start = time.perf_counter() - t
if what == "start":
    print(json.dumps({"start": start, "items": len(ds)}))
    sys.exit(0)
if what == "hand-built":
    torch.manual_seed(1)
    loader = torch.utils.data.DataLoader(ds, batch_size=16, num_workers=2, shuffle=True)
else:
    loader = dlas_fast.create_dataloader(ds, opt)
it = iter(loader)
for _ in range(10):
    next(it)
t = time.perf_counter()
n = 0
for _ in range(batches):
    try:
        b = next(it)
    except StopIteration:
        it = iter(loader)
        b = next(it)
    n += b["hq"].shape[0]
print(json.dumps({"rate": n / (time.perf_counter() - t), "items": len(ds)}))
"""


def measure(root: Path, what: str, batches: int, latency_ms: float) -> dict:
    cmd = [sys.executable, "-c", CHILD, str(root), what, str(batches)]
    if latency_ms > 0:
        delay = int(latency_ms * 1000)
        cmd = ["strace", "-f", "-qq", "--seccomp-bpf", "-e", "trace=openat", "-e",
               f"inject=openat:delay_enter={delay}", "-o", "/dev/null", *cmd]  # fmt: skip
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", type=Path, default=Path.home() / ".cache/dlas_fast/bench_loader_data")
    p.add_argument("--shards", type=Path, default=Path("/tmp/dlas_shards_bench"))
    p.add_argument("--shard-size", default="64MiB")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--batches", type=int, default=200)
    p.add_argument("--open-latency-ms", type=float, default=1.0)
    args = p.parse_args()
    if not args.data.is_dir():
        sys.exit(f"{args.data}: make it first with `python benches/bench_loader.py`")
    if shutil.which("strace") is None and args.open_latency_ms > 0:
        sys.exit("strace is needed for --open-latency-ms (apt-get install strace), or pass 0")
    summary = dlas_fast.pack(args.data, args.shards, shard_size=args.shard_size, progress=False)
    mib = summary.bytes / 2**20
    print(f"pack: {len(summary.shards)} shards, {summary.files} files, {mib:.0f} MiB "
          f"({summary.written} written, {summary.kept} kept)\n")  # fmt: skip
    sources = {"loose chunk folders": args.data, "pack": args.shards}
    measure(args.data, "start", 0, 0)  # the loose index cache, fresh
    kinds = ("rate", "slow", "hand", "hand_slow")
    rows = {name: {k: [] for k in ("start", *kinds)} for name in sources}
    for _ in range(args.runs):
        for name, root in sources.items():
            rows[name]["start"].append(measure(root, "start", 0, 0)["start"])
            for kind, loader in (("rate", "load"), ("hand", "hand-built")):
                rows[name][kind].append(measure(root, loader, args.batches, 0)["rate"])
                if args.open_latency_ms > 0:
                    slow = measure(root, loader, args.batches, args.open_latency_ms)
                    rows[name][f"{kind}_slow" if kind == "hand" else "slow"].append(slow["rate"])
    med = statistics.median
    lat = f"{args.open_latency_ms:g} ms per open"
    print("samples/s: create_dataloader / hand-built DataLoader\n")
    print(f"| source | index start | loading | loading, {lat} |")
    print("|---|---:|---:|---:|")

    def both(r, a, b):
        return f"{med(r[a]):.0f} / {med(r[b]):.0f}" if r[a] else "-"

    for name, r in rows.items():
        print(f"| {name} | {med(r['start']) * 1e3:.1f} ms | {both(r, 'rate', 'hand')} "
              f"| {both(r, 'slow', 'hand_slow')} |")  # fmt: skip
    loose, pack = rows["loose chunk folders"], rows["pack"]

    def ratio(k):
        return med(pack[k]) / med(loose[k])

    print(f"\npack / loose: loading {ratio('rate'):.2f}x / {ratio('hand'):.2f}x", end="")
    if pack["slow"]:
        print(f", with {lat} {ratio('slow'):.2f}x / {ratio('hand_slow'):.2f}x", end="")
    print(f"; index start {ratio('start'):.2f}x the loose time")
    return 0


if __name__ == "__main__":
    sys.exit(main())
