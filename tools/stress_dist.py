"""Run the distributed tests N times in a row and print how many passed.

    python3 -m tools.stress_dist -n 50                  # both jobs (2 and 3 workers) against one process
    python3 -m tools.stress_dist -n 10 -k killed        # the killed-worker test

Each run is a fresh pytest process (scheduler, servers and workers on loopback, bounded by the
tests' timeouts); a failing run's last output lines are printed.
"""
import subprocess
import sys
import time

from utils.errors import OneLineParser

DEFAULT_SELECTION = "agree"


def main(argv=None):
    parser = OneLineParser(prog="python3 -m tools.stress_dist", description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--runs", type=int, default=50)
    parser.add_argument("-k", default=DEFAULT_SELECTION, help="pytest -k expression of tests/test_distributed.py")
    args = parser.parse_args(argv)
    passed = 0
    start = time.time()
    for run in range(1, args.runs + 1):
        proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
                               "tests/test_distributed.py", "-k", args.k], capture_output=True, text=True)
        ok = proc.returncode == 0
        passed += ok
        print("run %d/%d: %s" % (run, args.runs, "pass" if ok else "FAIL"), flush=True)
        if not ok:
            print("\n".join(proc.stdout.splitlines()[-15:]), flush=True)
    print("%d of %d passed, %d failed (%.0f s)" % (passed, args.runs, args.runs - passed, time.time() - start))
    return 0 if passed == args.runs else 1


if __name__ == "__main__":
    sys.exit(main())
