"""Hostile inputs for the fault tests, made on the fly (no binary files in the tree):
special files, bombs, oversized names, damaged chunks. Each maker writes into a folder
the test gives it and returns what it made."""

from __future__ import annotations

# ---- Extraction: destinations, names, source lists ------------------------------------


# ---- Decoding: special files, decompression bombs, oversized options ------------------


# ---- Loading: damaged chunks, images no crop fits ------------------------------------
