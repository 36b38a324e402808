"""Create the split files of a public benchmark (download the raw files when possible).

Command line::

    python3 -m data.prepare cars196 --data_dir ./data/CARS_196 [--no_download]
    python3 -m data.prepare cub200 --data_dir ./data/CUB_200_2011
    python3 -m data.prepare sop --data_dir ./data/Stanford_Online_Products

Each dataset of the registry with a ``prepare`` (``data.spec.DatasetSpec``) is one subcommand:
its module (``data.cars196``, ``data.cub200``, ``data.sop``) downloads and unpacks the archive
when the files are missing (``data.preparation``), checks the layout and the image count, and
writes ``train.txt`` / ``test.txt`` (see ``data.meta``) into ``data_dir``. CUB-200-2011 and
SOP are also accepted one level down, as their archives unpack
(``data_dir/CUB_200_2011/images.txt``). Errors are one line on stderr and exit code 2.
"""

import logging
import sys

from .cars196 import prepare_cars196  # noqa: F401  (the preparers, by their old names)
from .cub200 import prepare_cub200  # noqa: F401
from .preparation import DownloadError, download_file  # noqa: F401
from .registry import DATASETS
from .sop import prepare_sop  # noqa: F401

# The datasets this command prepares, in registry order.
PREPARED = tuple(spec for spec in DATASETS.values() if spec.prepare is not None)


def main(argv=None):
    """Command line entry; returns the exit code (0 ok, 2 on any data problem)."""
    from utils.errors import OneLineParser  # the commands' one-line flag errors
    from utils.flags import path_flag

    parser = OneLineParser(
        prog="python3 -m data.prepare",
        description="Download a benchmark if needed and write its train.txt / test.txt.",
    )
    subparsers = parser.add_subparsers(dest="dataset", metavar="DATASET", required=True)
    for spec in PREPARED:
        sub = subparsers.add_parser(spec.name, help=spec.description, description=spec.description)
        sub.add_argument("--data_dir", default=spec.default_data_dir, type=path_flag, help="dataset directory")
        sub.add_argument(
            "--no_download",
            action="store_true",
            help="never download; fail with instructions if files are missing",
        )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        summary = DATASETS[args.dataset].prepare(args.data_dir, download=not args.no_download)
    except ValueError as error:
        print("error: {}".format(error), file=sys.stderr)
        return 2
    print(
        "{}: wrote {}/train.txt and {}/test.txt ({})".format(
            args.dataset, args.data_dir, args.data_dir, summary
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
