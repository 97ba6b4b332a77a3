"""Extraction on a Ray cluster: :func:`extract_ray`.

The sorted source list is cut into shards (``--shard K/N``: the sources at positions
``K-1 mod N``); each shard is one Ray task that runs the native extractor on the node
it lands on, with that task's CPUs as threads. Every node must see SRC and DST at the
same paths (a shared file system), as with ``--shard`` on a batch scheduler. The shards
of one job write exactly the chunks of a single run, so the result does not depend on
how many tasks or nodes there were.

Faults: DST is checked once by the driver (the rules of ``dlas-fast extract``); the
tasks then run in resume mode (overwrite mode with ``overwrite``), so a task that Ray
retries after its worker or node died keeps the chunks its first attempt finished and
redoes the rest (with ``overwrite``, redoes all of its shard). When a task fails for
good, the others are cancelled and the error is raised. A source that cannot be
decoded is reported in the merged summary, as in a single run. The per-shard locks are
``flock`` locks: the shared file system must support them (NFS v4 does; Lustre needs
its ``flock`` mount option).

Ray is an optional extra: ``pip install dlas_fast[ray]``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import sys
import time
from typing import Any

from dlas_fast import _native
from dlas_fast._extract import ExtractSummary, SourceIssue, options_json, summary_of

#: Set by tests only: a folder; while it exists, each shard's first attempt exits its
#: worker process (as a crash would) right after finishing, so that Ray retries it.
_CRASH_ONCE_ENV = "DLAS_FAST_RAY_CRASH_ONCE"


def _ray():
    try:
        import ray
    except ImportError:
        raise ImportError(
            "extract_ray needs Ray: pip install 'dlas_fast[ray]' (or pip install ray)"
        ) from None
    return ray


def _run_shard(src: str, dst: str, opts: str, shard: tuple[int, int], overwrite: bool,
               threads: int) -> dict:  # fmt: skip
    """One task: the native extractor on one shard (resuming an earlier attempt)."""
    raw = dict(json.loads(opts), n_thread=threads)
    summary = _native.extract(src, dst, json.dumps(raw), not overwrite, overwrite, shard)
    crash_dir = os.environ.get(_CRASH_ONCE_ENV)
    if crash_dir and os.path.isdir(crash_dir):
        marker = os.path.join(crash_dir, f"crashed-{shard[0]}of{shard[1]}")
        if not os.path.exists(marker):
            open(marker, "w").close()
            os._exit(1)  # the worker dies: Ray retries the task elsewhere
    return json.loads(summary)


def extract_ray(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    *,
    tasks: int | None = None,
    threads_per_task: int | None = None,
    address: str | None = None,
    max_retries: int = 3,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    **options: Any,
) -> ExtractSummary:
    """:func:`dlas_fast.extract` spread over a Ray cluster, one task per shard.

    Args:
        src, dst: as for :func:`dlas_fast.extract`; every node must see them at these
            paths.
        tasks: number of shards (default: four per task slot of the cluster, so a slow
            node or a retry holds up a small part of the job).
        threads_per_task: CPUs each task reserves and uses as extraction threads
            (default: the smallest node's CPU count, so that each node runs one task at
            a time and the native extractor balances its sources over all its cores:
            faster than several single-threaded tasks per node, see docs/scale.md).
        address: the cluster to join (``ray.init(address=...)``); default: the one Ray
            is already connected to, ``RAY_ADDRESS``, or a local instance.
        max_retries: how many times Ray reruns a task whose worker died or which
            raised.
        resume, overwrite: as for :func:`dlas_fast.extract` (checked once, for the job).
        progress: print a line to stderr as each shard finishes.
        **options: the extraction options of :func:`dlas_fast.extract`.

    Returns:
        The merged :class:`ExtractSummary` of every shard; ``report_path`` is a merged
        report written to DST.
    """
    if threads_per_task is not None and threads_per_task < 1:
        raise ValueError("option `threads_per_task`: must be >= 1")
    if max_retries < 0:
        raise ValueError("option `max_retries`: must be >= 0")
    for key in ("threads", "n_thread"):
        if key in options:
            raise ValueError(f"option `{key}`: on Ray, give `threads_per_task` instead")
    ray = _ray()
    # Workers on other nodes do not share the driver's working directory.
    if options.get("mask_path") is not None:
        options["mask_path"] = os.path.abspath(os.fspath(options["mask_path"]))
    opts = options_json(options)
    src, dst = os.path.abspath(os.fspath(src)), os.path.abspath(os.fspath(dst))
    if not os.path.isdir(src):
        raise FileNotFoundError(f"{src}: the source folder does not exist")
    _native.check_destination(src, dst, opts, resume, overwrite)
    if not ray.is_initialized():
        ray.init(address=address, log_to_driver=False)
    cpus = [n["Resources"].get("CPU", 0) for n in ray.nodes() if n.get("Alive")]
    cpus = [int(c) for c in cpus if c >= 1] or [1]
    if threads_per_task is None:
        threads_per_task = min(cpus)
    elif threads_per_task > max(cpus):
        raise ValueError(
            f"option `threads_per_task`: {threads_per_task} is more than any node's CPUs "
            f"({max(cpus)}); such a task could never be scheduled"
        )
    slots = max(1, int(ray.cluster_resources().get("CPU", 1)) // threads_per_task)
    # Resuming: keep the shard count of the run being finished (shards of two counts
    # overlap), unless told otherwise.
    count = tasks or (_shard_count(dst) if resume else None) or 4 * slots
    if count < 1:
        raise ValueError("option `tasks`: must be >= 1")
    remote = ray.remote(num_cpus=threads_per_task, max_retries=max_retries,
                        retry_exceptions=True)(_run_shard)  # fmt: skip
    started = time.monotonic()
    pending = {
        remote.remote(src, dst, opts, (k, count), overwrite, threads_per_task): k
        for k in range(1, count + 1)
    }
    results = []
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1)
        for ref in ready:
            k = pending.pop(ref)
            try:
                results.append(ray.get(ref))
            except BaseException:
                # A task failed for good: stop the others before reporting it.
                for other in pending:
                    ray.cancel(other, force=True)
                raise
            if progress:
                tiles = sum(r["tiles_written"] for r in results)
                mp = sum(r["input_pixels"] for r in results) / 1e6
                secs = max(time.monotonic() - started, 1e-9)
                print(
                    f"[{len(results)}/{count} shards] shard {k}/{count} done; "
                    f"{tiles} tiles, {mp / secs:.1f} MP/s",
                    file=sys.stderr,
                )
    return _merge(results, dst, time.monotonic() - started, count)


def _shard_count(dst: str) -> int | None:
    """The shard count of the job manifests in `dst` (``.dlas_fast-job-KofN.json``)."""
    counts = set()
    if os.path.isdir(dst):
        for name in os.listdir(dst):
            tag = name[len(".dlas_fast-job-") : -len(".json")]
            if name.startswith(".dlas_fast-job-") and name.endswith(".json") and "of" in tag:
                k, _, n = tag.partition("of")
                if k.isdigit() and n.isdigit():
                    counts.add(int(n))
    return counts.pop() if len(counts) == 1 else None


def main(argv: list[str]) -> int:
    """``dlas-fast extract SRC DST --ray [...]``: the extraction CLI on Ray. Returns the
    exit status (as ``dlas-fast extract``: 0, 3 when sources failed, 2 usage errors and
    a refused DST, 130 interrupted by Ctrl-C or SIGTERM, 1 anything else)."""
    job = _native.cli_extract_ray_job(argv)
    if isinstance(job, int):
        return job
    job = json.loads(job)
    options = job["options"]
    options.pop("n_thread", None)
    previous = signal.getsignal(signal.SIGTERM)
    try:
        # SIGTERM stops the run as Ctrl-C does (the finished chunks stay: resumable).
        signal.signal(signal.SIGTERM, signal.default_int_handler)
    except ValueError:  # not the main thread: leave it as it is
        previous = None
    try:
        summary = extract_ray(
            job["src"], job["dst"], tasks=job["ray_tasks"], threads_per_task=job["threads"],
            address=job["ray_address"], resume=job["resume"], overwrite=job["overwrite"],
            progress=not job["quiet"], **options,
        )  # fmt: skip
    except KeyboardInterrupt:
        print("interrupted: rerun with --resume to finish", file=sys.stderr)
        return 130
    except (ValueError, FileNotFoundError, _native.DestinationError, ImportError) as e:
        print(f"dlas-fast extract: error: {e}", file=sys.stderr)
        return 2
    except Exception as e:  # a task that kept failing, a lost cluster...
        print(f"dlas-fast extract: error: {e}", file=sys.stderr)
        return 1
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    print(_native.render_summary(json.dumps(dataclasses.asdict(summary))), end="")
    print(f"on Ray: {summary.shards} shards")
    return summary.exit_code


def _merge(results: list[dict], dst: str, elapsed: float, shards: int) -> ExtractSummary:
    """One summary for the whole job, also written to ``DST/.dlas_fast-report-ray.json``."""
    total: dict[str, Any] = {
        "sources_seen": 0,
        "sources_extracted": 0,
        "sources_kept": 0,
        "chunks_written": 0,
        "tiles_written": 0,
        "input_pixels": 0,
        "skipped": [],
        "failed": [],
    }
    for r in results:
        for key in ("sources_seen", "sources_extracted", "sources_kept", "chunks_written",
                    "tiles_written", "input_pixels"):  # fmt: skip
            total[key] += r[key]
        total["skipped"] += r["skipped"]
        total["failed"] += r["failed"]
    total["skipped"].sort(key=lambda s: s["path"])
    total["failed"].sort(key=lambda s: s["path"])
    total["elapsed_secs"] = elapsed
    total["shards"] = shards
    total["encoder"] = results[0]["encoder"] if results else ""
    report = os.path.join(dst, ".dlas_fast-report-ray.json")
    total["report_path"] = report
    os.makedirs(dst, exist_ok=True)
    tmp = report + ".partial"
    # Written anew: whatever was left at that name (a killed run's file, a link, a pipe)
    # goes first, and the file is created exclusively, never written through a link.
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)
    with open(tmp, "x") as f:
        json.dump(total, f, indent=1)
    os.replace(tmp, report)
    return summary_of(total)


__all__ = ["ExtractSummary", "SourceIssue", "extract_ray"]
