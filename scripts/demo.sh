#!/usr/bin/env bash
# Sets up the environment, makes a small sample of photos-like images, extracts a chunked
# dataset from them with the dlas-fast command and prints what happened.
set -euo pipefail
source "$(dirname "$0")/env.sh"
out=${1:-$(mktemp -d)/dlas_fast_demo}
python "$(dirname "$0")/../examples/make_sample.py" "$out/photos"
dlas-fast extract "$out/photos" "$out/dataset" --threads 2 --no-progress-bar || status=$?
echo
echo "dataset: $out/dataset"
ls "$out/dataset" | head
echo "dlas-fast exited with ${status:-0} (3 = finished, some sources could not be decoded:"
echo "the sample includes one broken file on purpose, to show how it is reported)"
