"""Draw a metric's curve for several runs, from their summary.csv and results.json.

    python3 -m tools.plot_runs results/inner-2 results/inner-0 --metric R@1 -o results/curves.png

Each run is a ``--save_dir`` of main.py; its curve is labelled by the folder's name. The point at
epoch 0 is the evaluation before training (``results.json``'s ``initial``), the others are the
epochs with an evaluation (``summary.csv``). The figure also prints each run's first, best and last
value, so the numbers can go beside the picture.
"""
import sys

from utils.errors import OneLineParser
from utils.summary.curves import plot_runs


def main(argv=None):
    parser = OneLineParser(prog="python3 -m tools.plot_runs", description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="run folders (--save_dir of main.py)")
    parser.add_argument("--metric", default="R@1", help="a column of summary.csv (R@1, MAP@R, NMI, ...)")
    parser.add_argument("-o", "--out", default="curves.png", help="the PNG to write")
    parser.add_argument("--title", default=None)
    args = parser.parse_args(argv)
    try:
        numbers = plot_runs(args.runs, args.metric, args.out, args.title)
    except (ValueError, OSError) as error:
        sys.stderr.write("error: %s\n" % error)
        return 2
    for name, (first, best, last) in numbers.items():
        print("%-20s %s first %.3f  best %.3f  last %.3f" % (name, args.metric, first, best, last))
    print("wrote %s" % args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
