"""The build backend of ``pip install .``: maturin's, after a check of the one build tool
that PyPI cannot provide.

The native module links libjpeg-turbo, built from source with its SIMD code, which on
x86 is assembly for NASM (or YASM). Without an assembler libjpeg-turbo's own build
stops deep in cargo's output; this check stops first and says what to install. cmake,
the other tool that build needs, is a build requirement taken from PyPI
(pyproject.toml). Wheels need neither: they carry the compiled library.
"""

from __future__ import annotations

import platform
import shutil
import sys

import maturin
from maturin import (  # noqa: F401  (the hooks passed on unchanged)
    build_sdist,
    get_requires_for_build_sdist,
    get_requires_for_build_wheel,
    prepare_metadata_for_build_wheel,
)

# An editable install needs what a wheel needs (maturin has no hook of its own for it).
get_requires_for_build_editable = get_requires_for_build_wheel

_X86 = {"x86_64", "amd64", "i386", "i486", "i586", "i686", "x86"}

MISSING_NASM = """
dlas_fast: building from source needs NASM, the assembler of libjpeg-turbo's SIMD code,
which dlas_fast compiles in and calls directly: there is no build without it.
Install it, then run the same command again:
    Debian/Ubuntu:  sudo apt-get install nasm
    Fedora/RHEL:    sudo dnf install nasm
    Alpine:         apk add nasm
    macOS:          brew install nasm
    conda:          conda install -c conda-forge nasm
YASM works too. Or install a prebuilt wheel, which needs no build tools.
"""


def check_build_tools() -> None:
    """Stops the build with a message naming the package to install when x86's
    assembler is missing."""
    if platform.machine().lower() in _X86 and not (shutil.which("nasm") or shutil.which("yasm")):
        print(MISSING_NASM, file=sys.stderr)
        raise SystemExit(1)


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    check_build_tools()
    return maturin.build_wheel(wheel_directory, config_settings, metadata_directory)


def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    check_build_tools()
    return maturin.build_editable(wheel_directory, config_settings, metadata_directory)
