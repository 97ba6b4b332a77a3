"""What the build is: ``dlas_fast.build_info()`` and ``dlas-fast --version`` name the
JPEG codec and the SIMD level it runs at, our own fast paths and the optimisation."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import dlas_fast
import pytest

SIMD = {"AVX2", "SSE2", "NEON", "none"}


def test_build_info_names_the_codec_and_the_build():
    info = dlas_fast.build_info()
    assert set(info) == {"version", "codec", "codec_simd", "fast_paths", "optimisation"}
    assert info["codec"].startswith("libjpeg-turbo 3.")
    assert info["codec_simd"] in SIMD
    assert isinstance(info["fast_paths"], bool)
    assert info["optimisation"].startswith(("release (opt-level ", "debug (opt-level "))
    cargo = (Path(__file__).resolve().parents[1] / "Cargo.toml").read_text()
    assert info["version"] == re.search(r'(?m)^version = "(.+)"', cargo).group(1)
    assert dlas_fast.jpeg_encoder() == "libjpeg-turbo"


@pytest.mark.skipif(dlas_fast.build_info()["codec_simd"] not in ("AVX2", "SSE2"),
                    reason="x86-64 only")  # fmt: skip
def test_codec_simd_is_what_libjpeg_turbo_runs():
    """libjpeg-turbo's own switches narrow its SIMD level; build_info follows them."""
    code = "import dlas_fast; print(dlas_fast.build_info()['codec_simd'])"
    for var, want in (("JSIMD_FORCESSE2", "SSE2"), ("JSIMD_FORCENONE", "none")):
        env = dict(os.environ, **{var: "1"})
        r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                           text=True, check=True)  # fmt: skip
        assert r.stdout.strip() == want, var


def check_version_text(text: str) -> None:
    info = dlas_fast.build_info()
    lines = text.splitlines()
    assert lines[0] == f"dlas-fast {info['version']}"
    assert lines[1:] == [
        f"codec: {info['codec']}",
        f"codec SIMD: {info['codec_simd']}",
        f"fast paths (own AVX2 code): {'on' if info['fast_paths'] else 'off'}",
        f"optimisation: {info['optimisation']}",
    ]


def test_version_of_the_command_line(capfd):
    r = subprocess.run([sys.executable, "-m", "dlas_fast", "--version"], capture_output=True,
                       text=True, check=True)  # fmt: skip
    check_version_text(r.stdout)
    # The console script's entry point, in this process (the native code prints).
    from dlas_fast.__main__ import main

    argv = sys.argv
    sys.argv = ["dlas-fast", "--version"]
    try:
        with pytest.raises(SystemExit) as done:
            main()
    finally:
        sys.argv = argv
    assert done.value.code == 0
    check_version_text(capfd.readouterr().out)
