"""Faults in the loading path: errors a DataLoader worker must be able to send to the
main process (every native exception class, Rust panics), chunks whose shared files
are bad, images no tile fits, and options that would size an allocation past reason.

Everything that could hang if it broke runs under a DataLoader ``timeout`` and a
``signal.alarm``; everything that could exhaust memory if it broke runs in a child
process with a memory cap."""

from __future__ import annotations

import json
import os
import pickle
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import warnings
from contextlib import contextmanager
from pathlib import Path

import dlas_fast
import pytest
import torch
from dlas_fast import _native
from dlas_fast.datasets.batch import collate
from dlas_fast.datasets.image_folder import ImageFolderDataset
from dlas_fast.datasets.single_image import SingleImageDataset
from hostile import (
    CHUNK_DAMAGE,
    chunked_dataset,
    corrupt_file,
    damage_chunk_file,
    noise_image,
    odd_size_images,
)

CONTEXTS = ("fork", "spawn")


@contextmanager
def deadline(seconds: int):
    """Fails the test (instead of hanging it) when the block takes over `seconds`."""

    def expired(signum, frame):
        raise TimeoutError(f"no result within {seconds} s: the loader hangs")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def loader(dataset, context: str, **kw):
    """A 2-worker DataLoader that gives up after 60 s without a batch."""
    kw.setdefault("batch_size", 1)
    return torch.utils.data.DataLoader(
        dataset, num_workers=2, multiprocessing_context=context, timeout=60, **kw
    )


def drain(batches) -> list:
    """Every outcome of iterating `batches`: a batch, or the exception a worker sent in
    its place (the iteration goes on after it). A loader that times out (RuntimeError)
    or a block past its deadline (TimeoutError) ends the test."""
    out, it = [], iter(batches)
    for _ in range(len(batches)):
        try:
            out.append(next(it))
        except StopIteration:
            break
        except (RuntimeError, TimeoutError):
            raise
        except Exception as e:  # noqa: BLE001 - the errors are what is tested
            out.append(e)
    return out


# ---- Errors that cross from a worker to the main process ------------------------------


def native_exception_classes() -> list[type]:
    """Every exception class the native module defines."""
    return [
        v
        for v in vars(_native).values()
        if isinstance(v, type) and issubclass(v, BaseException) and v.__module__ != "builtins"
    ]


def test_every_native_exception_is_importable_from_dlas_fast_and_pickles_by_name():
    classes = native_exception_classes()
    names = {c.__name__ for c in classes}
    assert {"DlasError", "DecodeError", "DestinationError", "CentersFileError",
            "ImageSizeError", "MixedSizesError"} <= names  # fmt: skip
    for cls in classes:
        assert cls.__module__ == "dlas_fast"
        assert getattr(dlas_fast, cls.__name__) is cls
        assert cls.__name__ in dlas_fast.__all__
        assert pickle.loads(pickle.dumps(cls)) is cls
        assert cls.path is None  # no file unless the error names one
        err = cls("some/file.png: what went wrong")
        err.path = "some/file.png"
        back = pickle.loads(pickle.dumps(err))
        assert type(back) is cls and str(back) == str(err) and back.path == "some/file.png"


def raised_by(call) -> BaseException:
    try:
        call()
    except BaseException as e:  # noqa: BLE001
        return e
    raise AssertionError("no error raised")


def test_native_errors_about_a_file_carry_it_through_pickle(tmp_path):
    bad_png = corrupt_file(tmp_path / "bad.png")
    junk_pt = tmp_path / "centers.pt"
    junk_pt.write_bytes(b"not a torch file")
    (tmp_path / "src").mkdir()
    dst = tmp_path / "dst"
    dst.mkdir()
    (dst / "notes.txt").write_text("mine")
    folder = tmp_path / "odd"
    odd = odd_size_images(folder)
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    noise_image(40, 40).save(mixed / "a.png")
    noise_image(48, 48).save(mixed / "b.png")
    full = dlas_fast.create_dataset({"mode": "fullimage", "dataroot_GT": str(folder),
                                     "min_tile_size": 32, "target_size": 32, "scale": 2,
                                     "on_error": "raise", "random_seed": 1})  # fmt: skip
    one_pixel = full.get_paths().index(str(odd["one_pixel"]))
    folder_ds = dlas_fast.create_dataset({"mode": "imagefolder", "paths": str(mixed),
                                          "on_error": "raise", "random_seed": 1})  # fmt: skip
    cases = [
        (dlas_fast.DecodeError, bad_png, lambda: _native.decode_image(str(bad_png))),
        (FileNotFoundError, tmp_path / "nope.png",
         lambda: _native.decode_image(str(tmp_path / "nope.png"))),
        (dlas_fast.CentersFileError, junk_pt, lambda: dlas_fast.read_centers(junk_pt)),
        (dlas_fast.DestinationError, dst, lambda: dlas_fast.extract(tmp_path / "src", dst)),
        (dlas_fast.ImageSizeError, odd["one_pixel"], lambda: full[one_pixel]),
        (dlas_fast.MixedSizesError, mixed / "b.png",
         lambda: folder_ds._loader.load({"index": [0, 1]}, folder_ds.corruptor.native, 0)),
    ]  # fmt: skip
    for cls, path, call in cases:
        err = raised_by(call)
        assert type(err) is cls, (cls, err)
        assert err.path == str(path) and str(path) in str(err)
        back = pickle.loads(pickle.dumps(err))
        assert type(back) is cls and str(back) == str(err) and back.path == str(path)


#: The classes a worker's item raises, by name: the native ones and the OSErrors the
#: bindings raise for files.
RAISED = {c.__name__: c for c in native_exception_classes()}
RAISED.update({"FileNotFoundError": FileNotFoundError, "OSError": OSError})


class Raising(torch.utils.data.Dataset):
    """Item i raises the class named ``cases[i][0]`` about the file ``cases[i][1]``
    (None: loads)."""

    def __init__(self, cases: list) -> None:
        self.cases = cases

    def __len__(self) -> int:
        return len(self.cases)

    def __getitem__(self, i: int):
        name, path = self.cases[i]
        if name is None:
            return torch.tensor(i)
        err = RAISED[name](f"{path}: cannot be loaded (a test)")
        err.path = path
        raise err


@pytest.mark.parametrize("context", CONTEXTS)
def test_every_native_exception_crosses_from_a_worker(context):
    names = list(RAISED)
    cases = [(None, None)]
    for i, name in enumerate(names):
        cases += [(name, f"/data/file_{i}.png"), (None, None)]
    with deadline(240):
        outcomes = drain(loader(Raising(cases), context))
    errors = [o for o in outcomes if isinstance(o, BaseException)]
    assert [type(e).__name__ for e in errors] == names
    for (_, path), err in zip([c for c in cases if c[0]], errors):
        assert path in str(err) and "cannot be loaded (a test)" in str(err)
    assert len(outcomes) == len(cases)  # the loader went on after each error


class PanickyLoader:
    """A native Loader whose calls for item 1 panic in native code."""

    def __init__(self, inner) -> None:
        self.inner = inner

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def load(self, items, *args, **kwargs):
        if 1 in items["index"]:
            _native._panic_for_tests()
        return self.inner.load(items, *args, **kwargs)


class PanickyFolder(ImageFolderDataset):
    """An ImageFolderDataset whose native loading panics for item 1 (item and batch
    paths alike)."""

    def __init__(self, opt) -> None:
        super().__init__(opt)
        self._loader = PanickyLoader(self._loader)


class PanickySingle(SingleImageDataset):
    """A SingleImageDataset whose native batch loading panics."""

    def _load_arrays(self, *args, **kwargs):
        _native._panic_for_tests()


@pytest.fixture(scope="module")
def chunks(tmp_path_factory) -> Path:
    """A chunked dataset of chunks a, b, c of 100 tiles each (ref.jpg, centers.pt)."""
    folder = tmp_path_factory.mktemp("chunks")
    counts = chunked_dataset(folder, ["a", "b", "c"])
    assert all(n > 64 for n in counts.values()), counts
    return folder / "ds"


@pytest.mark.parametrize("context", CONTEXTS)
def test_a_rust_panic_in_a_worker_reaches_the_main_process_as_a_dlas_error(
    context, tmp_path, chunks
):
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(4):
        noise_image(40, 40, seed=i).save(folder / f"{i}.png")
    opt = {"mode": "imagefolder", "paths": str(folder), "target_size": 32, "random_seed": 1}
    with deadline(240):
        outcomes = drain(loader(PanickyFolder(opt), context))
        assert [type(o).__name__ for o in outcomes].count("DlasError") == 1
        err = next(o for o in outcomes if isinstance(o, BaseException))
        assert type(err) is dlas_fast.DlasError and "deliberate panic" in str(err)
        assert len(outcomes) == 4
        single = PanickySingle({"paths": str(chunks), "random_seed": 1})
        with pytest.raises(dlas_fast.DlasError, match="deliberate panic"):
            next(iter(loader(single, context, batch_size=4, collate_fn=collate)))
    with pytest.raises(dlas_fast.DlasError, match="native code failed.*deliberate panic"):
        PanickyFolder(opt)[1]  # and in the main process


@pytest.mark.parametrize("context", CONTEXTS)
def test_real_datasets_raise_a_bad_file_through_two_workers(context, tmp_path, chunks):
    ds_root = tmp_path / "ds"
    shutil.copytree(chunks, ds_root)
    bad_tile = corrupt_file(ds_root / "b" / "00000003.jpg")
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(6):
        noise_image(40, 40, seed=i).save(folder / f"{i}.png")
    bad_png = corrupt_file(folder / "3.png")
    single = dlas_fast.create_dataset({"mode": "single_image_extensible", "paths": str(ds_root),
                                       "on_error": "raise", "random_seed": 1})  # fmt: skip
    images = dlas_fast.create_dataset({"mode": "imagefolder", "paths": str(folder),
                                       "target_size": 32, "on_error": "raise",
                                       "random_seed": 1})  # fmt: skip
    with deadline(240):
        # The batch path (create_dataloader's collate) and the item path.
        batches = loader(single, context, batch_size=8, collate_fn=collate)
        errors = [o for o in drain(batches) if isinstance(o, BaseException)]
        assert [type(e) for e in errors] == [dlas_fast.DecodeError]
        assert str(bad_tile) in str(errors[0])
        errors = [o for o in drain(loader(images, context)) if isinstance(o, BaseException)]
        assert [type(e) for e in errors] == [dlas_fast.DecodeError]
        assert str(bad_png) in str(errors[0])


# ---- A chunk whose shared files are bad -------------------------------------------------


def strict_set(root: Path, **kw):
    opt = {"mode": "single_image_extensible", "paths": str(root), "need_ref": True,
           "strict": True, "random_seed": 1}  # fmt: skip
    return dlas_fast.create_dataset(dict(opt, **kw))


def chunk_of(path: str) -> str:
    return Path(path).parent.name


@pytest.mark.parametrize("damage", CHUNK_DAMAGE)
@pytest.mark.parametrize("bad", ["a", "b", "c"])  # first, middle, last (wraps around)
def test_skip_steps_over_a_chunk_whose_shared_file_is_bad(damage, bad, tmp_path, chunks):
    root = tmp_path / "ds"
    shutil.copytree(chunks, root)
    target = damage_chunk_file(root / bad, damage)
    ds = strict_set(root)
    n = len(ds)
    members = [i for i, p in enumerate(ds.get_paths()) if chunk_of(p) == bad]
    assert len(members) > 64
    with deadline(120):
        with pytest.warns(UserWarning, match=re.escape(str(target))) as caught:
            got = [ds[i]["GT_path"] for i in members]
        # The bad file is named once, and no item of the bad chunk is loaded.
        assert sum(str(target) in str(w.message) for w in caught) == 1
        assert ds.skipped_files == [str(target)]
        assert all(chunk_of(p) != bad for p in got)
        # Substitutes come from one other chunk, each from its own place in it, the
        # same ones every time.
        assert len(set(got)) == len(got) and len({chunk_of(p) for p in got}) == 1
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert [ds[i]["GT_path"] for i in members[:5]] == got[:5]
        # The batch path: a full batch of loadable items.
        indices = members[:12] + [members[-1] + 1 if members[-1] + 1 < n else 0]
        batch = collate(ds.__getitems__(indices))
        assert batch["hq"].shape[0] == len(indices)
        assert all(chunk_of(p) != bad for p in batch["GT_path"])


@pytest.mark.parametrize("context", CONTEXTS)
def test_a_dataloader_over_a_bad_chunk_gives_full_batches(context, tmp_path, chunks):
    root = tmp_path / "ds"
    shutil.copytree(chunks, root)
    damage_chunk_file(root / "b", "ref_damaged")
    ds = strict_set(root, phase="train", batch_size=16, n_workers=2)
    with deadline(240), warnings.catch_warnings():
        # Each worker process warns once for the file, in its own process (forked
        # workers inherit this filter; pytest's would make the warning an error).
        warnings.simplefilter("ignore")
        batches = loader(ds, context, batch_size=16, collate_fn=collate, drop_last=True)
        paths = [p for b in batches for p in b["GT_path"]]
        if context == "fork":  # and DLAS's way: create_dataloader's own loader
            made = dlas_fast.create_dataloader(ds, ds.opt, shuffle=False)
            assert [p for b in made for p in b["GT_path"]] == paths
    assert len(paths) == len(ds) // 16 * 16
    assert all(chunk_of(p) != "b" for p in paths)


def test_every_chunk_bad_is_a_clear_error_not_a_loop(tmp_path, chunks):
    root = tmp_path / "ds"
    shutil.copytree(chunks, root)
    for name in ("a", "b", "c"):
        damage_chunk_file(root / name, "ref_damaged")
    ds = strict_set(root)
    with deadline(60), pytest.warns(UserWarning):
        with pytest.raises(dlas_fast.DlasError, match=r"on_error='skip'.*ref\.jpg"):
            ds[150]
        with pytest.raises(dlas_fast.DlasError, match=r"on_error='skip'"):
            ds.__getitems__([0, 1, 2])
    assert sorted(chunk_of(p) for p in ds.skipped_files) == ["a", "b", "c"]


def test_multi_frame_steps_over_the_windows_of_a_bad_chunk(tmp_path):
    names = [f"clip{i:012d}" for i in range(4)]  # 4 frames of one video
    chunked_dataset(tmp_path, names)
    root = tmp_path / "ds"
    target = damage_chunk_file(root / names[1], "ref_damaged")
    opt = {"mode": "multi_frame_extensible", "paths": str(root), "num_frames": 2,
           "need_ref": True, "random_seed": 1}  # fmt: skip
    ds = dlas_fast.create_dataset(opt)
    assert len(ds) == 300  # windows (0, 1), (1, 2), (2, 3) of 100 tiles each
    with deadline(120), pytest.warns(UserWarning, match=re.escape(str(target))):
        got = [ds[i]["GT_path"] for i in range(200)]  # windows touching frame 1
        batch = collate(ds.__getitems__(list(range(90, 110))))
    assert all(chunk_of(p) == names[3] for p in got)  # window (2, 3)'s last frame
    assert len(set(got[:100])) == 100
    assert all(chunk_of(p) == names[3] for p in batch["GT_path"])
    assert batch["hq"].shape[:2] == (20, 2)


# ---- Images no tile fits ---------------------------------------------------------------


def raw_sets(folder: Path) -> dict[str, dict]:
    """The raw-image datasets over `folder`, with options the odd sizes do not fit."""
    return {
        "fullimage": {"mode": "fullimage", "dataroot_GT": str(folder), "min_tile_size": 32,
                      "target_size": 32, "scale": 2},
        "fullimage-val": {"mode": "fullimage", "dataroot_GT": str(folder), "phase": "val",
                          "scale": 4, "force_multiple": 4},
        "imagefolder": {"mode": "imagefolder", "paths": str(folder), "scale": 2},
        "stylegan2": {"mode": "stylegan2", "path": str(folder), "target_size": 256},
    }  # fmt: skip


#: Which odd images each set cannot use (the others it loads, resized).
UNUSABLE = {
    "fullimage": {"one_pixel", "wide_strip", "tall_strip"},
    "fullimage-val": {"one_pixel"},
    "imagefolder": {"one_pixel"},
    "stylegan2": {"wide_strip", "tall_strip"},
}


@pytest.mark.parametrize("name", sorted(UNUSABLE))
def test_images_no_tile_fits_are_skipped_and_named(name, tmp_path):
    odd = odd_size_images(tmp_path / "imgs")
    opt = dict(raw_sets(tmp_path / "imgs")[name], random_seed=1)
    unusable = {str(odd[k]) for k in UNUSABLE[name]}
    ds = dlas_fast.create_dataset(opt)
    with deadline(120), pytest.warns(UserWarning) as caught:
        got = [ds[i] for i in range(len(ds))]
    assert set(ds.skipped_files) == unusable
    for path in unusable:
        assert sum(path in str(w.message) for w in caught) == 1
    keys = {"GT_path", "HQ_path"}
    loaded = {next(item[k] for k in keys if k in item) for item in got}
    assert not loaded & unusable
    strict = dlas_fast.create_dataset(dict(opt, on_error="raise"))
    for i, path in enumerate(strict.get_paths()):
        if path in unusable:
            with pytest.raises(dlas_fast.ImageSizeError) as info:
                strict[i]
            assert info.value.path == path and path in str(info.value)
            assert any(w in str(info.value) for w in ("min_tile_size", "force_multiple",
                                                      "too elongated"))  # fmt: skip
        else:
            strict[i]


def test_multiscale_and_resizing_sets_load_odd_sizes(tmp_path):
    odd_size_images(tmp_path / "imgs")
    sets = [
        {"mode": "multiscale", "paths": [str(tmp_path / "imgs")], "hq_tile_size": 8,
         "num_scales": 2, "scale": 2},
        {"mode": "imagefolder", "paths": str(tmp_path / "imgs"), "target_size": 32, "scale": 2},
        {"mode": "stylegan2", "path": str(tmp_path / "imgs"), "target_size": 32},
    ]  # fmt: skip
    for opt in sets:
        for policy in ("skip", "raise"):
            ds = dlas_fast.create_dataset(dict(opt, on_error=policy, random_seed=1))
            for i in range(len(ds)):
                assert ds[i]["hq"].shape[-1] in (8, 32)


@pytest.mark.parametrize("context", CONTEXTS)
def test_a_dataloader_over_odd_sizes_gives_full_batches(context, tmp_path):
    odd = odd_size_images(tmp_path / "imgs", good=5)
    ds = dlas_fast.create_dataset(dict(raw_sets(tmp_path / "imgs")["fullimage"], random_seed=1))
    with deadline(240), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        batches = list(loader(ds, context, batch_size=4, drop_last=True))
    assert [b["hq"].shape for b in batches] == [(4, 3, 32, 32)] * 2
    assert not {p for b in batches for p in b["HQ_path"]} & {str(p) for p in odd.values()}


# ---- Options that would size an allocation past reason ---------------------------------

#: (mode, options, the option named, the range named); each refused when the dataset is
#: built, before anything is allocated.
BOUNDS = [
    ("single_image_extensible", {"target_size": 1048576}, "target_size", "1 to 8192"),
    ("single_image_extensible", {"target_size": 0}, "target_size", "1 to 8192"),
    ("single_image_extensible", {"target_size": -32}, "target_size", "1 to 8192"),
    ("single_image_extensible", {"weights": [10**12]}, "weights", "0 to 1000000"),
    ("single_image_extensible", {"weights": [-1]}, "weights", "0 to 1000000"),
    ("single_image_extensible", {"scale": 10**12}, "scale", "1 to 8192"),
    ("single_image_extensible", {"scale": 0}, "scale", "1 to 8192"),
    ("single_image_extensible", {"target_size": 64, "scale": 128}, "scale", "at most"),
    ("single_image_extensible", {"force_multiple": 2**40}, "force_multiple", "1 to 8192"),
    ("single_image_extensible", {"fixed_corruptions": ["jpeg"] * 1000},
     "fixed_corruptions", "at most 64"),
    ("single_image_extensible", {"random_corruptions": ["jpeg"],
                                 "num_corrupts_per_image": 10**12},
     "num_corrupts_per_image", "0 to 64"),
    ("multi_frame_extensible", {"num_frames": 2**32 + 1}, "num_frames", "1 to 65536"),
    ("multi_frame_extensible", {"num_frames": 1, "weights": [10**12]}, "weights",
     "0 to 1000000"),
    ("imagefolder", {"target_size": 1048576}, "target_size", "1 to 8192"),
    ("imagefolder", {"weights": [10**12]}, "weights", "0 to 1000000"),
    ("imagefolder", {"scale": -2}, "scale", "1 to 8192"),
    ("fullimage", {"target_size": 1048576}, "target_size", "1 to 8192"),
    ("fullimage", {"min_tile_size": 0}, "min_tile_size", "1 to 8192"),
    ("fullimage", {"dataroot_GT_weights": [10**12]}, "dataroot_GT_weights", "0 to 1000000"),
    ("fullimage", {"blur_magnitude": 10**9}, "blur_magnitude", "0 to 100"),
    ("multiscale", {"hq_tile_size": 1048576}, "hq_tile_size", "1 to 8192"),
    ("multiscale", {"hq_tile_size": 4096, "num_scales": 4}, "num_scales", "8192"),
    ("stylegan2", {"target_size": 1048576}, "target_size", "1 to 8192"),
    ("stylegan2", {"target_size": 0}, "target_size", "1 to 8192"),
]  # fmt: skip

#: The options each case starts from (paths filled in by the child).
BASE = {
    "single_image_extensible": {},
    "multi_frame_extensible": {"num_frames": 1},
    "imagefolder": {"target_size": 32},
    "fullimage": {"min_tile_size": 32, "target_size": 32, "scale": 2},
    "multiscale": {"hq_tile_size": 8, "num_scales": 2, "scale": 2},
    "stylegan2": {"target_size": 32},
}

#: Runs in a child process with its address space capped at 6 GB: before these bounds
#: existed, several of the cases aborted the process or took all the machine's memory.
CHILD = textwrap.dedent(
    """
    import json, resource, sys
    resource.setrlimit(resource.RLIMIT_AS, (6 << 30, 6 << 30))
    import dlas_fast
    chunks, images, cases = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    where = {"paths": chunks, "path": images, "dataroot_GT": images}
    for mode, base, extra in cases:
        opt = dict(base, mode=mode, random_seed=1, **extra)
        if mode in ("imagefolder", "multiscale"):
            opt["paths"] = [images]
        elif mode in ("single_image_extensible", "multi_frame_extensible"):
            opt["paths"] = chunks
        elif mode == "stylegan2":
            opt["path"] = images
        else:
            opt["dataroot_GT"] = images
        try:
            ds = dlas_fast.create_dataset(opt)
            ds[0]
            out = ["built", ""]
        except Exception as e:
            out = [type(e).__name__, str(e)]
        print(json.dumps(out), flush=True)
    """
)


def run_capped(*args: str) -> list:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, *args], capture_output=True, text=True, timeout=300, env=env
    )
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("[")]
    assert proc.returncode == 0, (proc.returncode, lines, proc.stderr[-2000:])
    return lines


def test_options_that_size_allocations_are_bounded_by_name(tmp_path, chunks):
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(3):
        noise_image(64, 64, seed=i).save(folder / f"{i}.png")
    cases = [(mode, BASE[mode], extra) for mode, extra, _, _ in BOUNDS]
    results = run_capped(str(chunks), str(folder), json.dumps(cases))
    assert len(results) == len(BOUNDS)
    for (mode, extra, option, bound), (kind, message) in zip(BOUNDS, results):
        assert kind == "ValueError", (mode, extra, kind, message)
        assert f"'{option}'" in message or f"`{option}`" in message, (option, message)
        assert bound in message, (bound, message)


def test_batch_sizes_are_bounded_before_loading(chunks, tmp_path):
    with pytest.raises(ValueError, match=r"'batch_size'.*1 to 65536"):
        dlas_fast.create_dataloader(object(), {"phase": "train", "batch_size": 10**7})
    with pytest.raises(ValueError, match=r"'batch_size'.*1 to 65536"):
        dlas_fast.create_dataloader(object(), {"phase": "train", "batch_size": 0})
    # The native batch calls check the count themselves (a DataLoader built by hand).
    ds = dlas_fast.create_dataset({"mode": "single_image_extensible", "paths": str(chunks),
                                   "random_seed": 1})  # fmt: skip
    with pytest.raises(ValueError, match=r"batch_size.*65536"):
        ds.__getitems__([0] * 70000)
    (tmp_path / "imgs").mkdir()
    noise_image(40, 40).save(tmp_path / "imgs" / "a.png")
    folder = dlas_fast.create_dataset({"mode": "imagefolder", "paths": str(tmp_path / "imgs"),
                                       "target_size": 32, "random_seed": 1})  # fmt: skip
    with pytest.raises(ValueError, match=r"batch_size.*65536"):
        folder.__getitems__([0] * 70000)
    ms = dlas_fast.create_dataset({"mode": "multiscale", "paths": [str(tmp_path / "imgs")],
                                   "hq_tile_size": 8, "num_scales": 1, "scale": 1,
                                   "random_seed": 1})  # fmt: skip
    with pytest.raises(ValueError, match=r"batch_size.*65536"):
        ms.__getitems__([0] * 70000)


def test_native_weights_are_bounded_before_allocating(chunks):
    index = dlas_fast.ChunkIndex(str(chunks))
    with pytest.raises(ValueError, match=r"weights.*0 to 1000000"):
        _native.TileSet([index], [10**12])
    with pytest.raises(ValueError, match=r"weights.*over the limit"):
        _native.TileSet([index] * 30, [10**6] * 30)  # 90 million chunk slots
    with pytest.raises(ValueError, match=r"weights.*0 to 1000000"):
        _native.FrameSet([index], [10**12], 0, 1)
    with pytest.raises(ValueError, match=r"weights.*0 to 1000000"):
        _native.ImageFolderList([str(chunks)], [10**12])
