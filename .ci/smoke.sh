#!/usr/bin/env bash
# The wheel as a user gets it. Usage: .ci/smoke.sh WHEEL
# Installs WHEEL into a venv of its own that holds nothing but the package's runtime
# dependencies (made once from PyPI, kept in the cache keyed on them; the wheel itself
# is reinstalled every time), then runs .ci/smoke.py there with a PATH of that venv
# alone: no compiler, cargo, cmake or nasm, and no source tree on sys.path.
set -euo pipefail
wheel=$(realpath "$1")
root=$(cd "$(dirname "$0")/.." && pwd)
cache=${DLAS_FAST_CACHE:-$HOME/.cache/dlas_fast}
key=$( (grep '^dependencies' "$root/pyproject.toml"; python3 -VV) | sha256sum | cut -c1-12)
rt=$cache/runtime-$key
if [ ! -f "$rt/.complete" ]; then
  echo "smoke: creating $rt (the wheel's dependencies from PyPI, once)" >&2
  rm -rf "$rt"
  python3 -m venv "$rt"
  "$rt/bin/pip" install -q --upgrade pip
  "$rt/bin/pip" install -q "$wheel"
  touch "$rt/.complete"
fi
"$rt/bin/pip" install -q --force-reinstall --no-deps "$wheel"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$root/.ci/smoke.py" "$root/examples/make_sample.py" "$work/"
cd "$work"
env -i HOME="$work" PATH="$rt/bin" LANG=C.UTF-8 PYTHONUNBUFFERED=1 python smoke.py
