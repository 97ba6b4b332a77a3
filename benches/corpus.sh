#!/usr/bin/env bash
# Makes the benchmark corpus of real photographs: the desktop wallpapers Debian ships in
# plasma-workspace-wallpapers (2-30 MP JPEGs: landscape, portrait, greyscale, two
# progressive ones, small screenshots the extractor skips).
#   benches/corpus.sh DEST          the distinct JPEGs (39 files, 155 MP)
#   benches/corpus.sh --png DEST    the same plus the package's distinct full-size PNGs
#                                   (58 files, 312 MP: RGB and RGBA, up to 5120x2880)
# Needs apt-get (download only, about 90 MB). The same package version gives the same
# files under the same names, so figures stay comparable.
set -euo pipefail
png=0
if [ "${1:-}" = --png ]; then png=1; shift; fi
dest=${1:?usage: corpus.sh [--png] DEST}
mkdir -p "$dest"
dest=$(realpath "$dest")  # the copies are made from a temporary folder
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
apt-get download plasma-workspace-wallpapers >/dev/null 2>&1 ||
  { apt-get update >/dev/null && apt-get download plasma-workspace-wallpapers >/dev/null; }
dpkg -x ./*.deb pkg
# Copies each distinct file (by content) of the sorted list on stdin as NNN_name.
number_distinct() {
  local prefix=$1 n=0 sum
  declare -A seen=()
  while IFS= read -r -d '' f; do
    sum=$(md5sum "$f" | cut -c1-32)
    [ -n "${seen[$sum]:-}" ] && continue
    seen[$sum]=1
    n=$((n + 1))
    cp "$f" "$dest/${prefix}$(printf '%03d' "$n")_$(basename "$f" | tr ' ' '_')" || exit 1
  done
  echo "$n"
}
jpegs=$(find pkg -type f \( -iname '*.jpg' -o -iname '*.jpeg' \) -print0 | sort -z | number_distinct "") || exit 1
echo "corpus.sh: $jpegs distinct JPEG photos in $dest"
if [ $png = 1 ]; then
  pngs=$(find pkg -type f -iname '*.png' ! -name 'screenshot.png' -print0 | sort -z | number_distinct png_) || exit 1
  echo "corpus.sh: $pngs distinct PNG images in $dest"
fi
