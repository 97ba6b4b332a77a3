"""Packing a chunked dataset into tar shards from Python: :func:`pack` (docs/shards.md)."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field

from dlas_fast import _native


@dataclass(frozen=True)
class PackSummary:
    """What :func:`pack` did."""

    chunks: int
    files: int
    #: Bytes of the shards together.
    bytes: int
    #: Shard file names, in order.
    shards: list[str]
    #: Shards written by this run, and kept from an earlier one.
    written: int
    kept: int
    #: Files of chunk folders left out (FIFOs, links out of the dataset...), with why.
    skipped: list[tuple[str, str]] = field(default_factory=list)
    #: Shards of an earlier pack in OUT that are not part of this one.
    left_over: list[str] = field(default_factory=list)
    elapsed_secs: float = 0.0


def pack(
    dataset: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    shard_size: int | str = "1GiB",
    threads: int | None = None,
    progress: bool | None = None,
) -> PackSummary:
    """Packs the chunked dataset ``dataset`` into uncompressed tar shards in ``out``.

    Whole chunk folders per shard, in name order, each member a file under its path
    relative to the dataset (``tar -x`` of every shard gives the chunk folders back),
    with a sidecar index beside each shard and a manifest, ``dlas_fast-pack.json``,
    written last. The output is the same whatever ``threads``. A run stopped part-way
    (Ctrl-C) keeps its finished shards: running it again writes only the rest.

    Args:
        dataset: the chunked dataset's folder.
        out: the shards' folder (made if missing), apart from ``dataset``.
        shard_size: about how many bytes a shard holds (an int, or ``"512MiB"``...).
        threads: worker threads (None: all cores).
        progress: None: the command line's progress bar when stderr is a terminal;
            False: nothing.

    Raises:
        DestinationError: ``out`` is, holds or lies in ``dataset``, or holds files under
            the pack's names that it did not write (they are left as they are), or
            another pack is writing into it.
        ValueError: a shard size below 4096 bytes or a bad thread count.
        KeyboardInterrupt: the run was stopped; its finished shards stay.
    """
    if isinstance(shard_size, bool) or not isinstance(shard_size, (int, str)):
        raise ValueError(f"shard_size: expected a size such as 1GiB, got {shard_size!r}")
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int)
                                or not 1 <= threads <= 1024):  # fmt: skip
        raise ValueError(f"threads: expected an int in 1..=1024, got {threads!r}")
    bar = progress is not False and sys.stderr is not None and sys.stderr.isatty()
    # Sizes as text are read as the command line reads --shard-size.
    raw = _native.pack(os.fspath(dataset), os.fspath(out), str(shard_size), threads or 0, bar)
    data = json.loads(raw)
    data["skipped"] = [tuple(s) for s in data["skipped"]]
    return PackSummary(**data)
