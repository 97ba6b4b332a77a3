"""The extraction job from Python: :func:`extract` and its summary object."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

from dlas_fast import _native

TYPE_CHECKING = False  # without importing typing: the CLI's start-up time counts
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

#: Python-only spellings accepted besides the DLAS option names.
_ALIASES = {
    "threads": "n_thread",
    "max_size_before_halving": "input_image_max_size_before_being_halved",
}

#: The DLAS option names the native job reads (its serde fields).
OPTION_NAMES = (
    "crop_sz",
    "step",
    "thres_sz",
    "resize_final_img",
    "exclusions",
    "compression_level",
    "input_image_max_size_before_being_halved",
    "min_size",
    "vertical_split",
    "mask_path",
    "max_pixels",
    "n_thread",
)

#: DLAS options Python reads itself before the job sees the rest.
_PYTHON_OPTIONS = ("use_masking", "only_resize")

#: The command line's words in the native job's messages, and the Python API's.
_CLI_WORDS = (
    ("--resume", "resume=True"),
    ("--overwrite", "overwrite=True"),
    ("--shard ", "shard="),
)


@dataclass(frozen=True)
class SourceIssue:
    """A source that was skipped by rule or could not be extracted, and why."""

    path: str
    reason: str


@dataclass(frozen=True)
class ExtractSummary:
    """Totals of one extraction run (also written to DST's report file)."""

    sources_seen: int
    sources_extracted: int
    sources_kept: int
    skipped: list[SourceIssue] = field(default_factory=list)
    failed: list[SourceIssue] = field(default_factory=list)
    chunks_written: int = 0
    tiles_written: int = 0
    input_pixels: int = 0
    elapsed_secs: float = 0.0
    encoder: str = ""
    report_path: str = ""
    #: How many shards this summary adds up (:func:`dlas_fast.distributed.extract_ray`).
    shards: int = 1

    @property
    def input_mp_per_sec(self) -> float:
        """Source megapixels decoded per second."""
        return self.input_pixels / 1e6 / self.elapsed_secs if self.elapsed_secs else 0.0

    @property
    def exit_code(self) -> int:
        """What the CLI would exit with: 0, or 3 when some sources failed."""
        return 3 if self.failed else 0


def extract(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    *,
    resume: bool = False,
    overwrite: bool = False,
    shard: str | tuple[int, int] | None = None,
    progress: bool | Callable[[dict], Any] | None = None,
    **options: Any,
) -> ExtractSummary:
    """Extract a chunked patch dataset from the images under ``src`` into ``dst``.

    Args:
        src: folder of source images (recursive).
        dst: output folder.
        resume: keep the complete chunks of an interrupted run of the same job (from the
            same sources: a changed source list is refused).
        overwrite: write into a DST holding earlier output of dlas-fast, replacing its
            chunks (never anything it did not write).
        shard: ``"K/N"`` or ``(K, N)``: only the sources whose 0-based position in the
            sorted source list is K-1 mod N. All N shards, run into one DST together
            or one after another, write exactly the chunks of one whole run.
        progress: None (default): the command line's progress bar when stderr is a
            terminal, nothing otherwise; False: nothing; a function: called with a dict
            for each source done (``path``, ``status``: "extracted", "kept", "skipped"
            or "failed", ``tiles``, ``pixels``, ``done``, ``total``), in this thread;
            what it raises stops the run (resumable) and is raised here.
        **options: DLAS option names (``crop_sz``, ``step``, ``thres_sz``,
            ``resize_final_img``, ``exclusions``, ``compression_level``,
            ``input_image_max_size_before_being_halved``, ``min_size``,
            ``vertical_split``, ``mask_path``, ``max_pixels``, ``n_thread``/``threads``).
            ``use_masking=False`` disables ``mask_path``; ``only_resize`` is not supported.

    Returns:
        The run's :class:`ExtractSummary`. Sources that could not be decoded are in
        ``summary.failed``; they do not raise.

    Raises:
        ValueError: an option this function does not take (named, with every one it
            takes), or an invalid value (named in the message).
        DestinationError: DST overlaps SRC, holds other output or files this tool did
            not write, holds output from another source list, or another run holds its
            lock (decided before anything in DST is written or removed).
        FileNotFoundError: SRC does not exist.
        KeyboardInterrupt: Ctrl-C stopped the run (within a second); the chunks it
            finished stay, and ``resume=True`` completes it.
    """
    opts = options_json(options)
    callback = progress if callable(progress) else None
    bar = progress is True or (progress is None and _stderr_is_a_terminal())
    try:
        raw = _native.extract(
            os.fspath(src),
            os.fspath(dst),
            opts,
            resume,
            overwrite,
            parse_shard(shard),
            bar,
            callback,
        )
    except _native.DestinationError as e:
        raise _in_python_words(e) from None
    return summary_of(json.loads(raw))


def _stderr_is_a_terminal() -> bool:
    try:
        return os.isatty(2)
    except OSError:
        return False


def _in_python_words(err: BaseException) -> BaseException:
    """`err` (same class and path) with the command line's flags in its message said as
    this API's keyword arguments."""
    message = str(err)
    for flag, keyword in _CLI_WORDS:
        message = message.replace(flag, keyword)
    new = type(err)(message)
    new.path = getattr(err, "path", None)
    return new


def _check_names(options: dict[str, Any]) -> None:
    """A ValueError naming an option `extract` does not take, the option it probably
    misspells, and every one it takes."""
    valid = (*OPTION_NAMES, *_ALIASES, *_PYTHON_OPTIONS)
    for key in options:
        if key in valid:
            continue
        import difflib

        close = difflib.get_close_matches(key, valid, n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(
            f"extract() got an unexpected keyword argument {key!r}{hint}; besides src, dst, "
            f"resume, overwrite and shard it takes the DLAS options {', '.join(OPTION_NAMES)} "
            f"(threads for n_thread, max_size_before_halving for "
            f"input_image_max_size_before_being_halved), use_masking and only_resize"
        )


def options_json(options: dict[str, Any]) -> str:
    """The extraction options as the native job reads them (JSON of DLAS names)."""
    _check_names(options)
    opts = {_ALIASES.get(k, k): v for k, v in options.items()}
    if opts.pop("only_resize", False):
        raise ValueError("option `only_resize`: not supported (DLAS never implemented it)")
    if not opts.pop("use_masking", True):
        opts.pop("mask_path", None)
    if opts.get("mask_path") is not None:
        opts["mask_path"] = os.fspath(opts["mask_path"])
    return json.dumps(opts)


def parse_shard(shard: str | tuple[int, int] | None) -> tuple[int, int] | None:
    """``"K/N"`` or ``(K, N)`` as ``(K, N)``, checked: ``1 <= K <= N``."""
    if shard is None:
        return None
    if isinstance(shard, str):
        k, sep, n = shard.partition("/")
        if not sep or not k.strip().isdigit() or not n.strip().isdigit():
            raise ValueError(f"option `shard`: expected K/N, got {shard!r}")
        shard = (int(k), int(n))
    k, n = shard
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (k, n)) or not 1 <= k <= n:
        raise ValueError(f"option `shard`: must be K/N with 1 <= K <= N, got {k}/{n}")
    return int(k), int(n)


def summary_of(raw: dict[str, Any]) -> ExtractSummary:
    """An :class:`ExtractSummary` from the native job's JSON summary."""
    raw = dict(raw)
    raw["skipped"] = [SourceIssue(**s) for s in raw["skipped"]]
    raw["failed"] = [SourceIssue(**s) for s in raw["failed"]]
    return ExtractSummary(**raw)
