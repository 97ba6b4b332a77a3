"""``python -m dlas_fast extract SRC DST ...`` and the ``dlas-fast`` console script."""

import sys

from dlas_fast._native import cli_main


def main() -> None:
    """Run the dlas-fast command line and exit with its status."""
    sys.exit(cli_main(["dlas-fast", *sys.argv[1:]]))


if __name__ == "__main__":
    main()
