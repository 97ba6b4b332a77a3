# Sourced by scripts/demo.sh and .ci/run: sets up (once) and activates the environment,
# kept OUTSIDE the checkout:
#   $DLAS_FAST_CACHE (default ~/.cache/dlas_fast)/venv-<key>  Python venv (torch, numpy...),
#                                       keyed on requirements-dev.txt and the Python version
#   $DLAS_FAST_CACHE/target             cargo target dir (incremental across runs)
#   $DLAS_FAST_CACHE/wheel              the wheel last built
# then installs dlas_fast into the venv the way users get it: the wheel `pip install .`
# builds (release optimisation, libjpeg-turbo with its SIMD code). Its path is left in
# $DLAS_FAST_WHEEL.
# DLAS_FAST_BUILD=dev makes an editable development build instead (`maturin develop`):
# quicker to rebuild after a change, about half the speed. For the developer loop only.
# Options are set for this script and given back at its end (a developer's shell is not
# left exiting on the next failing command).
env_sh_options=$(set +o)
# A command substitution runs without errexit, so `set +o` above reports it off:
# whether the caller had it is read here, in this shell.
case $- in *e*) env_sh_errexit=1 ;; *) env_sh_errexit= ;; esac
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache=${DLAS_FAST_CACHE:-$HOME/.cache/dlas_fast}
key=$( (cat "$root/scripts/requirements-dev.txt"; python3 -VV) | sha256sum | cut -c1-12)
venv=$cache/venv-$key
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$cache/target}
mkdir -p "$cache"

# Debian packages: nasm assembles libjpeg-turbo's SIMD code (cmake comes from PyPI);
# cjpeg (libjpeg-turbo-progs) makes the arithmetic-coded JPEGs the tests decode.
need=()
command -v nasm >/dev/null || need+=(nasm)
command -v cjpeg >/dev/null || need+=(libjpeg-turbo-progs)
if [ ${#need[@]} -gt 0 ]; then
  echo "env.sh: installing ${need[*]} (Debian packages)" >&2
  if [ "$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi
  $SUDO apt-get update -qq >/dev/null
  $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
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

if [ "${DLAS_FAST_BUILD:-release}" = dev ]; then
  (cd "$root" && maturin develop -q >&2)
else
  echo "env.sh: building and installing dlas_fast (pip install ., release build)" >&2
  wheels=$cache/wheel
  mkdir -p "$wheels"
  rm -f "$wheels"/dlas_fast-*.whl
  pip wheel -q --no-deps -w "$wheels" "$root" >&2
  DLAS_FAST_WHEEL=$(ls "$wheels"/dlas_fast-*.whl)
  export DLAS_FAST_WHEEL
  pip install -q --force-reinstall --no-deps "$DLAS_FAST_WHEEL" >&2
fi
eval "$env_sh_options"
if [ -n "$env_sh_errexit" ]; then set -e; fi
unset env_sh_options env_sh_errexit
