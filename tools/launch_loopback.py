"""Run a parameter-server job (scheduler, servers, workers) on this machine, on loopback only.

    python3 -m tools.launch_loopback -n 2 -s 1 --timeout 600 --log_dir logs -- \\
        python3 main.py --kvstore=dist_sync ...

Every process is pinned to 127.0.0.1 and ``lo``, the job is bounded by the timeout, and every
process is ended at the end, at the timeout, when any one fails, or on Ctrl-C / SIGTERM
(utils/loopback_job.py). A failure is one line naming the process, its log and the log's last line;
exit codes: 0 done, 1 the job failed, 2 bad input (nothing started), 130 interrupted.
For several machines use MXNet's launcher with a host file (see docs/distributed.md).
"""
import argparse
import math
import sys

from utils.errors import OneLineParser
from utils.loopback_job import LaunchInterrupted, check_port_free, launch


def build_parser():
    parser = OneLineParser(prog="python3 -m tools.launch_loopback", description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--num_workers", type=int, required=True)
    parser.add_argument("-s", "--num_servers", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=3600, help="seconds before everything is killed")
    parser.add_argument("--log_dir", default=None,
                        help="write each process's output to a file in this folder (created if missing)")
    parser.add_argument("--port", type=int, default=None,
                        help="the scheduler's port on 127.0.0.1 (default: a free one)")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="the worker command, after --")
    return parser


def check_flags(args, command):
    """One-line ValueError for flags no job can run with."""
    if not command:
        raise ValueError("give the worker command after --")
    if args.num_workers < 1 or args.num_servers < 1:
        raise ValueError("give -n >= 1 workers and -s >= 1 servers, got -n %d -s %d"
                         % (args.num_workers, args.num_servers))
    if not (math.isfinite(args.timeout) and args.timeout > 0):
        raise ValueError("--timeout must be a positive number of seconds, got %g" % args.timeout)
    if args.port is not None:
        check_port_free(args.port)


def main(argv=None):
    args = build_parser().parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    try:
        check_flags(args, command)
        result = launch(command, args.num_workers, args.num_servers, args.timeout, args.log_dir, args.port)
    except ValueError as error:
        sys.stderr.write("error: %s\n" % error)
        return 2
    except LaunchInterrupted as stop:
        sys.stderr.write("interrupted by %s; every process of the job was stopped\n" % stop)
        return 130
    if result.summary():
        sys.stderr.write("error: %s\n" % result.summary())
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
