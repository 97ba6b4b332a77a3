#!/usr/bin/env bash
# Sets up the environment, makes a small sample of photos-like images, extracts a chunked
# dataset from them with the dlas-fast command, prints what happened, loads a batch of it
# with SingleImageDataset (and of the photos with ImageFolderDataset), then inspects and
# verifies it and writes preview contact sheets. Everything goes to one folder, named
# at the start (default: ~/dlas_fast_demo, or the first argument); a rerun replaces it.
set -euo pipefail
source "$(dirname "$0")/env.sh"
out=${1:-$HOME/dlas_fast_demo}
echo "demo: writing to $out"
python "$(dirname "$0")/../examples/make_sample.py" "$out/photos"
# --overwrite: a rerun replaces the dataset this demo wrote (and nothing else).
dlas-fast extract "$out/photos" "$out/dataset" --threads 2 --no-progress-bar --overwrite \
  || status=$?
echo
echo "dataset: $out/dataset"
ls "$out/dataset" | head
echo "dlas-fast exited with ${status:-0} (3 = finished, some sources could not be decoded:"
echo "the sample includes one broken file on purpose, to show how it is reported)"
echo
echo "loading one batch of it with SingleImageDataset (DLAS option dict):"
python - "$out/dataset" <<'PY'
import sys

import dlas_fast

opt = {"mode": "single_image_extensible", "paths": sys.argv[1], "need_ref": True,
       "strict": True, "target_size": 128, "scale": 2, "phase": "train",
       "batch_size": 8, "n_workers": 0}  # fmt: skip
dataset = dlas_fast.create_dataset(opt)
batch = next(iter(dlas_fast.create_dataloader(dataset, opt)))
print(f"  {len(dataset)} tiles; index cache: {dataset.tiles.indexes[0].cache_path}")
for key, value in batch.items():
    shape = tuple(value.shape) if hasattr(value, "shape") else f"{len(value)} paths"
    print(f"  {key:<16} {shape} {getattr(value, 'dtype', '')}")
PY
echo
echo "and one batch of the raw photos with ImageFolderDataset (the broken one left out):"
python - "$out/photos" "$out/readable_photos" <<'PY'
import os
import shutil
import sys

import dlas_fast

# The sample's broken file on purpose is left out here: links to the readable photos.
good = sys.argv[2]
shutil.rmtree(good, ignore_errors=True)
os.makedirs(good)
for name in sorted(os.listdir(sys.argv[1])):
    if not name.startswith("broken"):
        os.symlink(os.path.join(sys.argv[1], name), os.path.join(good, name))
opt = {"mode": "imagefolder", "paths": [good], "target_size": 256, "scale": 4,
       "fixed_corruptions": ["jpeg-broad", "gaussian_blur"], "random_seed": 1,
       "phase": "train", "batch_size": 4, "n_workers": 0}  # fmt: skip
dataset = dlas_fast.create_dataset(opt)
batch = next(iter(dlas_fast.create_dataloader(dataset, opt)))
print(f"  {len(dataset)} images")
for key, value in batch.items():
    shape = tuple(value.shape) if hasattr(value, "shape") else f"{len(value)} paths"
    print(f"  {key:<18} {shape} {getattr(value, 'dtype', '')}")
PY
echo
echo "the tools: inspect the dataset, verify its files, preview samples and corruptions"
dlas-fast inspect "$out/dataset"
dlas-fast verify "$out/dataset" --no-progress-bar --quiet
dlas-fast preview "$out/dataset" --out "$out/preview.png" -n 4 --option scale=2
dlas-fast preview "$out/dataset" --out "$out/corruptions.png" --corruptions \
  --option 'fixed_corruptions=[jpeg-broad, gaussian_blur, noise]' --option scale=2
echo
echo "done: the sample, its dataset and the contact sheets are in $out"
echo "next:"
echo "  - look at $out/preview.png and $out/corruptions.png"
echo "  - extract your own photos: dlas-fast extract PHOTOS DST   (dlas-fast extract --help)"
echo "  - train on DST from a DLAS config: set the dataset's mode to single_image_extensible"
echo "    and its paths to DST (docs/migration.md, docs/datasets/)"
