"""The public API is documented and typed: a docstring on every public name, a stub
for every native name, and a docs page per dataset whose option table is exactly what
the dataset accepts."""

from __future__ import annotations

import ast
import importlib
import inspect
import re
from pathlib import Path

import dlas_fast
import pytest
from dlas_fast import _native
from dlas_fast.datasets.options import CORRUPTOR_KEYS
from dlas_fast.registry import _REGISTRY, _resolve

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "python" / "dlas_fast"
DOCS = ROOT / "docs"

MODULES = [
    "dlas_fast",
    "dlas_fast._native",
    "dlas_fast.config",
    "dlas_fast.corruptor",
    "dlas_fast.distributed",
    "dlas_fast._extract",
    "dlas_fast.index",
    "dlas_fast.patch_tree",
    "dlas_fast.preview",
    "dlas_fast.registry",
    "dlas_fast.samplers",
    "dlas_fast.datasets.base",
    "dlas_fast.datasets.batch",
    "dlas_fast.datasets.options",
    "dlas_fast.datasets.single_image",
    "dlas_fast.datasets.multi_frame",
    "dlas_fast.datasets.image_folder",
    "dlas_fast.datasets.multiscale",
    "dlas_fast.datasets.stylegan2",
    "dlas_fast.datasets.torch_dataset",
    "dlas_fast.datasets.full_image",
]


def public_names(module):
    names = getattr(module, "__all__", None)
    if names is None:
        names = [n for n in vars(module) if not n.startswith("_")]
    for name in names:
        obj = getattr(module, name)
        if inspect.ismodule(obj) or not (inspect.isclass(obj) or callable(obj)):
            continue
        # Names a module imports from elsewhere are checked where they are defined.
        home = getattr(obj, "__module__", module.__name__) or module.__name__
        if module.__name__ != "dlas_fast" and not home.startswith(module.__name__):
            continue
        if not home.startswith("dlas_fast") and home != "builtins":
            continue
        yield name, obj


def undocumented():
    missing = []
    for modname in MODULES:
        module = importlib.import_module(modname)
        if not (module.__doc__ or "").strip():
            missing.append(modname)
        for name, obj in public_names(module):
            if not (inspect.getdoc(obj) or "").strip():
                missing.append(f"{modname}.{name}")
            if inspect.isclass(obj):
                for attr, member in vars(obj).items():
                    if attr.startswith("_") or not (
                        callable(member) or isinstance(member, (property, staticmethod))
                    ):
                        continue
                    if not (inspect.getdoc(getattr(obj, attr)) or "").strip():
                        missing.append(f"{modname}.{name}.{attr}")
    return missing


def test_every_public_name_has_a_docstring():
    assert undocumented() == []


def test_every_native_name_has_a_stub_and_the_package_is_typed():
    assert (PACKAGE / "py.typed").exists()
    stub = ast.parse((PACKAGE / "_native.pyi").read_text())
    stubbed = {
        node.name if not isinstance(node, ast.AnnAssign) else node.target.id
        for node in stub.body
        if isinstance(node, (ast.FunctionDef, ast.ClassDef, ast.AnnAssign))
    }
    stubbed |= {t.id for node in stub.body if isinstance(node, ast.Assign) for t in node.targets}
    native = {n for n in vars(_native) if not n.startswith("__")} - {"_panic_for_tests"}
    assert native - stubbed == set()


def doc_table(page: Path, heading: str) -> set[str]:
    """The backticked names in the first column of the table under `heading`."""
    text = page.read_text()
    match = re.search(rf"^{re.escape(heading)}\s*$(.*?)(?=^#|\Z)", text, re.M | re.S)
    assert match, f"{page.name}: no '{heading}' section"
    names = set()
    for line in match.group(1).splitlines():
        cell = re.match(r"\|\s*`([^`]+)`\s*\|", line)
        if cell:
            names.add(cell.group(1))
    assert names, f"{page.name}: no table under '{heading}'"
    return names


def accepted_options(mode: str) -> set[str]:
    cls = _resolve(mode)
    known = set(cls.OPTIONS)
    # Datasets with a corruptor accept its options too (their modules pass them on).
    for base in inspect.getmro(cls):
        if base.__module__.startswith("dlas_fast.datasets."):
            source = inspect.getsource(importlib.import_module(base.__module__))
            if "CORRUPTOR_KEYS" in source:
                known |= CORRUPTOR_KEYS
            if "DEGRADATION_KEYS" in source:
                # `degradation` in the page's table; the degradation's own options in
                # docs/degradations.md, which the page links.
                known |= {"degradation"}
    return known


@pytest.mark.parametrize("mode", sorted(m for m in _REGISTRY))
def test_each_dataset_has_a_docs_page_listing_exactly_its_options(mode):
    page = DOCS / "datasets" / f"{mode}.md"
    assert page.exists(), f"no docs page for {mode}"
    assert doc_table(page, "## Options") == accepted_options(mode)
    if "degradation" in accepted_options(mode):
        assert "degradations.md" in page.read_text(), mode
    assert doc_table(page, "## Output keys")
    assert f"{mode}.md" in (DOCS / "datasets" / "README.md").read_text()


def test_migration_guide_exists_and_names_the_new_imports():
    text = (DOCS / "migration.md").read_text()
    for name in ("create_dataset", "create_dataloader", "ImageCorruptor", "dlas-fast extract"):
        assert name in text
    assert dlas_fast.create_dataset.__module__ == "dlas_fast.registry"


def documented_keys(mode: str) -> tuple[set[str], set[str]]:
    """(every key, the unconditional keys) of a docs page's Output keys table."""
    text = (DOCS / "datasets" / f"{mode}.md").read_text()
    section = re.search(r"^## Output keys\s*$(.*?)(?=^#|\Z)", text, re.M | re.S).group(1)
    every, always = set(), set()
    for line in section.splitlines():
        row = re.match(r"\|\s*`([^`]+)`\s*\|(.*)", line)
        if row:
            every.add(row.group(1))
            if "(only when" not in row.group(2):
                always.add(row.group(1))
    return every, always


@pytest.fixture(scope="module")
def tiny_sources(tmp_path_factory):
    from conftest import gradient, save

    root = tmp_path_factory.mktemp("doc_items")
    for i in range(2):
        save(gradient(600, 560, seed=i), root / "photos" / f"p{i}0000001.png")
    dlas_fast.extract(root / "photos", root / "chunks", crop_sz=[256], step=[256],
                      resize_final_img=[1])  # fmt: skip
    return root


@pytest.mark.parametrize(
    "mode,opt",
    [
        ("single_image_extensible", {"paths": "chunks", "need_ref": True, "scale": 2}),
        ("multi_frame_extensible", {"paths": "chunks", "num_frames": 1, "scale": 2}),
        ("imagefolder", {"paths": "photos", "target_size": 64, "scale": 2}),
        ("imagefolder", {"paths": "photos", "target_size": 64, "fetch_alt_image": True}),
        ("multiscale", {"paths": "photos", "hq_tile_size": 16, "num_scales": 2, "scale": 2}),
        ("stylegan2", {"path": "photos", "target_size": 32}),
        (
            "fullimage",
            {"dataroot_GT": "photos", "min_tile_size": 64, "target_size": 32, "scale": 2},
        ),  # fmt: skip
    ],
)
def test_documented_output_keys_are_the_items_keys(tiny_sources, mode, opt):
    opt = {k: str(tiny_sources / v) if k in ("paths", "path", "dataroot_GT") else v
           for k, v in opt.items()}  # fmt: skip
    item = dlas_fast.create_dataset({"mode": mode, "random_seed": 1, **opt})[0]
    every, always = documented_keys(mode)
    assert always <= set(item) <= every
