"""``python -m dlas_fast ...`` and the ``dlas-fast`` console script.

``preview`` and ``extract --ray`` run here in Python (they need torch or Ray); every
other command (``extract``, ``inspect``, ``verify``) is the native command line, which
never imports torch.
"""

import sys


def main() -> None:
    """Run the dlas-fast command line and exit with its status."""
    args = sys.argv[1:]
    if args[:1] == ["preview"]:
        from dlas_fast.preview import main as preview

        sys.exit(preview(args[1:]))
    if args[:1] == ["extract"] and "--ray" in args:
        from dlas_fast.distributed import main as extract_ray_main

        sys.exit(extract_ray_main(["dlas-fast", *args]))
    from dlas_fast._native import cli_main

    try:
        code = cli_main(["dlas-fast", *args])
    except KeyboardInterrupt:
        # Ctrl-C outside the extraction run (which handles it itself): no traceback.
        print("dlas-fast: interrupted", file=sys.stderr)
        code = 130
    sys.exit(code)


if __name__ == "__main__":
    main()
