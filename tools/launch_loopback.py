"""Run a parameter-server job (scheduler, servers, workers) on this machine, on loopback only.

MXNet's own launcher (``mxnet/tools/launch.py --launcher local``) guesses the host's network
address; this one pins every process to 127.0.0.1 and the ``lo`` interface, bounds the job with
a timeout, and ends every process it started, whatever happens::

    python3 -m tools.launch_loopback -n 2 -s 1 --timeout 600 -- \\
        python3 main.py --kvstore=dist_sync ...

For several machines use MXNet's launcher with a host file (see README.md).
"""
import argparse
import os
import re
import signal
import socket
import subprocess
import sys
import time

from utils.errors import OneLineParser

LOOPBACK = "127.0.0.1"


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


def role_env(role, num_workers, num_servers, port, task_id):
    env = dict(os.environ)
    env.update({
        "DMLC_ROLE": role, "DMLC_PS_ROOT_URI": LOOPBACK, "DMLC_PS_ROOT_PORT": str(port),
        "DMLC_NODE_HOST": LOOPBACK, "DMLC_INTERFACE": "lo", "DMLC_NUM_WORKER": str(num_workers),
        "DMLC_NUM_SERVER": str(num_servers), "DMLC_TASK_ID": str(task_id),
        "DMLC_JOB_CLUSTER": "local",
    })
    return env


RANK_LINE = re.compile(r"kvstore rank (\d+) of \d+ workers")


def _stop_all(procs, grace=10.0):
    """SIGTERM every process group still running, SIGKILL what is left after ``grace`` seconds."""
    for proc in procs:
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    deadline = time.time() + grace
    for proc in procs:
        try:
            proc.wait(timeout=max(0.1, deadline - time.time()))
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()


def _name_logs_by_rank(log_dir, num_workers):
    """worker-task<N>.log → worker-<rank>.log, the rank the kvstore gave (main.py logs it)."""
    ranks = {}
    for task in range(num_workers):
        path = os.path.join(log_dir, "worker-task%d.log" % task)
        with open(path, errors="replace") as handle:
            match = RANK_LINE.search(handle.read())
        if match:
            os.replace(path, os.path.join(log_dir, "worker-%s.log" % match.group(1)))
            ranks[task] = int(match.group(1))
    return ranks


class JobResult:
    """What became of a job: the workers' exit codes (negative: the signal that ended them), the task id of
    the first worker that failed (or None), the kvstore rank of each worker task, and whether the
    timeout ended it."""

    def __init__(self, codes, failed_task, ranks, timed_out):
        self.codes, self.failed_task, self.ranks, self.timed_out = codes, failed_task, ranks, timed_out

    def summary(self):
        """One line on a job that did not succeed (empty when it did)."""
        if self.timed_out:
            return "the job did not finish within the timeout; all processes were stopped"
        if self.failed_task is None:
            return ""
        code = self.codes[self.failed_task]
        how = "was killed by %s" % signal.Signals(-code).name if code < 0 else "exited with %d" % code
        rank = self.ranks.get(self.failed_task)
        who = "worker task %d%s" % (self.failed_task, "" if rank is None else " (kvstore rank %d)" % rank)
        return "%s %s; every other process of the job was stopped" % (who, how)


def launch(command, num_workers, num_servers, timeout, log_dir=None, poll=0.2):
    """Start the job and wait for it; returns a :class:`JobResult`.

    Scheduler and servers are MXNet processes that serve the kvstore as soon as ``mxnet`` is
    imported with their role set; they exit when the workers finish. The launcher watches every
    worker: when one fails (non-zero exit or a signal), the others would wait for it forever in the
    kvstore, so every process is stopped at once. Everything still running at the end (or at the
    timeout) is stopped too. Worker logs are ``worker-<kvstore rank>.log`` in ``log_dir``.
    """
    port = free_port()
    server_cmd = [sys.executable, "-c", "import mxnet"]
    procs, workers, outs = [], [], []

    def start(cmd, role, task_id, log_name):
        out = None
        if log_dir:
            out = open(os.path.join(log_dir, log_name), "w")
            outs.append(out)
        proc = subprocess.Popen(cmd, env=role_env(role, num_workers, num_servers, port, task_id),
                                stdout=out, stderr=subprocess.STDOUT if out else None,
                                start_new_session=True)
        procs.append(proc)
        return proc

    deadline = time.time() + timeout
    failed, timed_out = None, False
    try:
        start(server_cmd, "scheduler", 0, "scheduler.log")
        for index in range(num_servers):
            start(server_cmd, "server", index, "server-%d.log" % index)
        for index in range(num_workers):
            workers.append(start(command, "worker", index, "worker-task%d.log" % index))
        while any(proc.poll() is None for proc in workers):
            failed = next((i for i, proc in enumerate(workers) if proc.poll() not in (None, 0)), None)
            if failed is not None:
                break
            if time.time() > deadline:
                timed_out = True
                break
            time.sleep(poll)
        if failed is None:
            failed = next((i for i, proc in enumerate(workers) if proc.poll() not in (None, 0)), None)
    finally:
        _stop_all(procs)
        for out in outs:
            out.close()
    ranks = _name_logs_by_rank(log_dir, num_workers) if log_dir else {}
    return JobResult([proc.returncode for proc in workers], failed, ranks, timed_out)


def main(argv=None):
    parser = OneLineParser(prog="python3 -m tools.launch_loopback", description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--num_workers", type=int, required=True)
    parser.add_argument("-s", "--num_servers", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=3600, help="seconds before everything is killed")
    parser.add_argument("--log_dir", default=None, help="write each process's output to a file here")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="the worker command, after --")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command or args.num_workers < 1 or args.num_servers < 1:
        sys.stderr.write("error: give -n >= 1, -s >= 1 and a worker command after --\n")
        return 2
    result = launch(command, args.num_workers, args.num_servers, args.timeout, args.log_dir)
    if result.summary():
        sys.stderr.write("error: %s\n" % result.summary())
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
