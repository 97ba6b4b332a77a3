# Sourced by scripts/demo.sh and .ci/run: sets up (once) and activates the development
# environment, kept OUTSIDE the checkout and keyed on the lock files:
#   $DLAS_FAST_CACHE (default ~/.cache/dlas_fast)/venv-<key>   Python venv (torch, numpy, ...)
#   $DLAS_FAST_CACHE/target                                     cargo target dir
# then builds and installs dlas_fast into the venv (editable).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache=${DLAS_FAST_CACHE:-$HOME/.cache/dlas_fast}
key=$(cat "$root/Cargo.lock" "$root/scripts/requirements-dev.txt" | sha256sum | cut -c1-12)
venv=$cache/venv-$key
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$cache/target}
mkdir -p "$cache"

# Build tools for libjpeg-turbo, built from source into every build: cmake and nasm.
if ! command -v cmake >/dev/null || ! command -v nasm >/dev/null; then
  echo "env.sh: installing cmake and nasm (Debian packages)" >&2
  if [ "$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi
  $SUDO apt-get update -qq >/dev/null
  $SUDO apt-get install -y -qq cmake nasm >/dev/null
fi

if [ ! -x "$venv/bin/python" ] || [ ! -f "$venv/.complete" ]; then
  echo "env.sh: creating $venv (torch is a large download the first time)" >&2
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --upgrade pip
  "$venv/bin/pip" install -q -r "$root/scripts/requirements-dev.txt"
  touch "$venv/.complete"
fi
export VIRTUAL_ENV=$venv
export PATH=$venv/bin:$PATH
(cd "$root" && maturin develop -q >&2)
