#!/usr/bin/env bash
# Installs (once) the REFERENCE implementation of Real-ESRGAN's high-order degradation
# pipeline -- BasicSR 1.4.2 + Real-ESRGAN 0.3.0 from PyPI -- into a plain
# `pip install --target` directory, outside the checkout and outside the dev venv:
#
#   ${DLAS_FAST_CACHE:-$HOME/.cache/dlas_fast}/basicsr-ref
#
# scripts/realesrgan_reference.py puts that directory on sys.path. Nothing is installed
# into the dev venv; the venv (scripts/env.sh, requirements-dev.txt) must already give
# torch, torchvision, numpy, opencv-python-headless (cv2) and PyYAML. Run it with the
# venv's python first on PATH (or PYTHON=/path/to/python).
#
# What goes into the directory (all --no-deps, ~150 MB, almost all of it scipy):
#   basicsr==1.4.2     sdist; --no-build-isolation so setup.py uses the venv's setuptools.
#                      Without BASICSR_EXT=True its setup.py compiles nothing: pure Python.
#   realesrgan==0.3.0  pure-Python wheel.
#   scipy              basicsr.data.degradations imports scipy.special (j1 for the sinc
#                      kernel) and scipy.stats at import time; the venv has no scipy.
#   tqdm               imported by basicsr.models.sr_model (reached from RealESRGANModel).
# BasicSR 1.4.2 imports torchvision.transforms.functional_tensor, which torchvision >= 0.17
# no longer has: the reference script aliases it to torchvision's private successor module
# (same rgb_to_grayscale, 0.2989/0.587/0.114), no install needed for that.
#
# Idempotent: a stamp file records the pins and the Python version; a matching stamp
# means nothing to do. A failed run leaves no half-made directory behind.
set -euo pipefail
py=${PYTHON:-python3}
cache=${DLAS_FAST_CACHE:-$HOME/.cache/dlas_fast}
dest=$cache/basicsr-ref
pins=(basicsr==1.4.2 realesrgan==0.3.0 scipy==1.17.1 tqdm==4.70.1)
stamp="${pins[*]} | $("$py" -c 'import sys; print(sys.version.split()[0])')"

if [ -f "$dest/.complete" ] && [ "$(cat "$dest/.complete")" = "$stamp" ]; then
  echo "reference-env.sh: $dest is up to date" >&2
  exit 0
fi

"$py" -c 'import torch, torchvision, numpy, cv2, yaml' || {
  echo "reference-env.sh: $py lacks torch/torchvision/numpy/cv2/yaml: use the dev venv (scripts/env.sh)" >&2
  exit 1
}

mkdir -p "$cache"
tmp=$(mktemp -d "$cache/basicsr-ref.tmp.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
echo "reference-env.sh: installing ${pins[*]} into $dest" >&2
"$py" -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation \
  --no-compile --target "$tmp" "${pins[@]}" >&2
echo "$stamp" >"$tmp/.complete"
rm -rf "$dest"
mv "$tmp" "$dest"
trap - EXIT
echo "reference-env.sh: done ($(du -sh "$dest" | cut -f1))" >&2
