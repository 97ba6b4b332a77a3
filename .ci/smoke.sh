#!/usr/bin/env bash
# The wheel as a user gets it. Usage: .ci/smoke.sh WHEEL
# Installs WHEEL into venvs of its own that hold nothing but the package's runtime
# dependencies: the light install (`pip install dlas_fast`, no torch) and the one with
# torch (`dlas_fast[torch]`), then runs .ci/smoke.py in each with a PATH of that venv
# alone: no compiler, cargo, cmake or nasm, and no source tree on sys.path.
set -euo pipefail
wheel=$(realpath "$1")
root=$(cd "$(dirname "$0")/.." && pwd)
cache=${DLAS_FAST_CACHE:-$HOME/.cache/dlas_fast}

# A venv holding the wheel's dependencies with the extras $2 ("" or "[torch]"), made
# once from PyPI and kept keyed on them; the wheel itself is reinstalled every time.
runtime() {
  local key rt
  key=$( (grep '^dependencies' "$root/pyproject.toml"; echo "$2"; python3 -VV) \
    | sha256sum | cut -c1-12)
  rt=$cache/runtime-$1-$key
  if [ ! -f "$rt/.complete" ]; then
    echo "smoke: creating $rt (the wheel's dependencies$2 from PyPI, once)" >&2
    rm -rf "$rt"
    python3 -m venv "$rt"
    "$rt/bin/pip" install -q --upgrade pip >&2
    "$rt/bin/pip" install -q "$wheel$2" >&2
    touch "$rt/.complete"
  fi
  "$rt/bin/pip" install -q --force-reinstall --no-deps "$wheel" >&2
  echo "$rt"
}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$root/.ci/smoke.py" "$root/examples/make_sample.py" "$work/"
cd "$work"
# The light install (no torch): extraction works, the datasets name what to install.
rt=$(runtime light "")
env -i HOME="$work" PATH="$rt/bin" LANG=C.UTF-8 PYTHONUNBUFFERED=1 SMOKE=light python smoke.py
rm -rf photos dataset
# With torch: batches through create_dataloader and a plain DataLoader.
rt=$(runtime torch "[torch]")
env -i HOME="$work" PATH="$rt/bin" LANG=C.UTF-8 PYTHONUNBUFFERED=1 python smoke.py
