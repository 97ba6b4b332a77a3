"""The build backend of `pip install .` (scripts/pep517): maturin's, after a check that
names the package to install when libjpeg-turbo's assembler is missing."""

from __future__ import annotations

import importlib.util
import os
import platform
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def backend():
    path = ROOT / "scripts" / "pep517" / "dlas_fast_backend.py"
    spec = importlib.util.spec_from_file_location("dlas_fast_backend", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_pyproject_names_this_backend_and_takes_cmake_from_pypi():
    text = (ROOT / "pyproject.toml").read_text()
    build = text[text.index("[build-system]") : text.index("[project]")]
    assert 'build-backend = "dlas_fast_backend"' in build
    assert 'backend-path = ["scripts/pep517"]' in build
    assert re.search(r'requires = \[.*"cmake[>=<]', build)
    assert (ROOT / "scripts" / "pep517" / "dlas_fast_backend.py").is_file()


def test_editable_installs_ask_for_what_wheels_need():
    module = backend()
    assert module.get_requires_for_build_editable is module.get_requires_for_build_wheel


def test_missing_nasm_stops_the_build_naming_the_package(tmp_path, monkeypatch, capsys):
    # An x86 machine whose PATH has no assembler.
    monkeypatch.setattr(platform, "machine", lambda: "x86_64")
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(SystemExit) as stop:
        backend().build_wheel(str(tmp_path / "out"))
    assert stop.value.code == 1
    err = capsys.readouterr().err
    assert "apt-get install nasm" in err and "brew install nasm" in err
    assert not (tmp_path / "out").exists()


def test_an_assembler_on_path_lets_the_build_go_on(tmp_path, monkeypatch):
    monkeypatch.setattr(platform, "machine", lambda: "x86_64")
    fake = tmp_path / "nasm"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path) + os.pathsep + os.environ["PATH"])
    backend().check_build_tools()  # returns: no SystemExit


def test_other_machines_need_no_assembler(tmp_path, monkeypatch):
    # libjpeg-turbo's Arm SIMD code is C intrinsics: no NASM there.
    monkeypatch.setattr(platform, "machine", lambda: "aarch64")
    monkeypatch.setenv("PATH", str(tmp_path))
    backend().check_build_tools()
