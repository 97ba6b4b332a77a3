"""Generates the torch.save fixtures read by rust/dlas-core/tests/torchfile.rs.

Run once by hand (cargo test does not need Python), from anywhere:

    /root/.cache/dlas_fast/venv-dev/bin/python rust/dlas-core/tests/data/torchfile/make_fixtures.py

It needs torch (any 2.x). The malicious fixtures are built from raw pickle bytes and
are never unpickled here. With `--check-rust` it instead verifies that the file our
Rust writer produced (rust_written.pt, regenerate it with
`DLAS_TORCHFILE_BLESS=1 cargo test -p dlas-core --test torchfile`) is read back
exactly by torch.load, with and without weights_only.
"""

import io
import pickle
import sys
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent


def realistic_centers():
    """58 grid tiles like DLAS writes, then a negative, large and extreme values.

    Keep in sync with `realistic()` in tests/torchfile.rs.
    """
    d = {}
    for i in range(58):
        d[i + 1] = ((32 + 64 * (i // 8), 32 + 64 * (i % 8)), 64 if i % 5 else 128)
    d[59] = ((-48, 7), 64)
    d[-3] = ((0, 0), 1)
    d[1_000_000] = ((2**40 + 5, -(2**33)), 2**31)
    d[2**62] = ((2**63 - 1, -(2**63)), 0)
    return d


def torch_zip_with_pickle(path, data_pkl):
    """A torch zip (written by torch's own PyTorchFileWriter) around raw pickle bytes."""
    writer = torch._C.PyTorchFileWriter(str(path))
    for name, data in [
        ("data.pkl", data_pkl),
        (".format_version", b"1"),
        (".storage_alignment", b"64"),
        ("byteorder", b"little"),
    ]:
        writer.write_record(name, data, len(data))
    writer.write_end_of_file()


def legacy_header():
    """The first three pickles of a legacy torch.save stream (as torch writes them)."""
    buf = io.BytesIO()
    torch.save({}, buf, _use_new_zipfile_serialization=False)
    raw = buf.getvalue()
    # The header is followed by the object `}q\x00.` and the keys `\x80\x02]q\x00.`.
    tail = b"\x80\x02}q\x00.\x80\x02]q\x00."
    assert raw.endswith(tail), raw
    return raw[: -len(tail)]


# pickle protocol 2 of `os.system('echo pwned')` -- GLOBAL + REDUCE; never loaded here.
EVIL = b"\x80\x02cos\nsystem\nq\x00X\n\x00\x00\x00echo pwnedq\x01\x85q\x02Rq\x03."


def make():
    d = realistic_centers()
    torch.save(d, HERE / "centers_zip.pt")
    torch.save(d, HERE / "centers_legacy.pt", _use_new_zipfile_serialization=False)
    torch.save({}, HERE / "empty_zip.pt")
    torch.save({}, HERE / "empty_legacy.pt", _use_new_zipfile_serialization=False)
    torch.save({1: (32, 32, 64)}, HERE / "wrong_shape_zip.pt")
    torch.save({"w": torch.zeros(2)}, HERE / "tensor_zip.pt")
    torch_zip_with_pickle(HERE / "malicious_zip.pt", EVIL)
    (HERE / "malicious_legacy.pt").write_bytes(
        legacy_header() + EVIL + pickle.dumps([], protocol=2)
    )
    for p in sorted(HERE.glob("*.pt")):
        assert p.stat().st_size < 10_000, p
        print(f"{p.name}: {p.stat().st_size} bytes")


def check_rust():
    path = HERE / "rust_written.pt"
    want = realistic_centers()
    for weights_only in (True, False):
        got = torch.load(path, weights_only=weights_only)
        assert type(got) is dict, type(got)
        assert list(got.items()) == list(want.items()), (weights_only, got)
        for k, ((r, c), w) in got.items():
            assert all(type(x) is int for x in (k, r, c, w)), (k, r, c, w)
    # Byte-identical pickle to what Python itself produces for the same dict.
    import zipfile

    with zipfile.ZipFile(path) as z:
        assert z.read("archive/data.pkl") == pickle.dumps(want, protocol=2)
    print(f"{path.name}: torch.load (weights_only True and False) reads it back exactly")


if __name__ == "__main__":
    check_rust() if "--check-rust" in sys.argv else make()
