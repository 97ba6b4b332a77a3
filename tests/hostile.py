"""Hostile inputs for the fault tests, made on the fly (no binary files in the tree):
special files, bombs, oversized names, damaged chunks. Each maker writes into a folder
the test gives it and returns what it made."""

from __future__ import annotations

# ---- Extraction: destinations, names, source lists ------------------------------------


# ---- Decoding: special files, decompression bombs, oversized options ------------------


def special_files(folder, fifo: str = "x.jpg", zero: str = "y.jpg") -> list:
    """In `folder`: a FIFO named `fifo` that nothing ever writes to (opening it to read
    waits for a writer forever) and a symbolic link named `zero` to /dev/zero (reading
    it never ends). Returns their paths."""
    import os
    from pathlib import Path

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    os.mkfifo(folder / fifo)
    os.symlink("/dev/zero", folder / zero)
    return [folder / fifo, folder / zero]


# ---- Loading: damaged chunks, images no crop fits ------------------------------------
