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
import signal
import socket
import subprocess
import sys
import time

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


def launch(command, num_workers, num_servers, timeout, log_dir=None):
    """Start the job and wait for the workers; returns the workers' exit codes.

    Scheduler and servers are MXNet processes that serve the kvstore as soon as ``mxnet`` is
    imported with their role set; they exit when the workers finish. Everything still running at
    the end (or at the timeout) is killed.
    """
    port = free_port()
    server_cmd = [sys.executable, "-c", "import mxnet"]
    procs, workers = [], []

    def start(cmd, role, task_id):
        out = None
        if log_dir:
            out = open(os.path.join(log_dir, "%s-%d.log" % (role, task_id)), "w")
        proc = subprocess.Popen(cmd, env=role_env(role, num_workers, num_servers, port, task_id),
                                stdout=out, stderr=subprocess.STDOUT if out else None,
                                start_new_session=True)
        procs.append(proc)
        return proc

    deadline = time.time() + timeout
    try:
        start(server_cmd, "scheduler", 0)
        for index in range(num_servers):
            start(server_cmd, "server", index)
        for index in range(num_workers):
            workers.append(start(command, "worker", index))
        codes = []
        for proc in workers:
            remaining = max(1.0, deadline - time.time())
            try:
                codes.append(proc.wait(timeout=remaining))
            except subprocess.TimeoutExpired:
                codes.append(None)
        return codes
    finally:
        for proc in procs:
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
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
    codes = launch(command, args.num_workers, args.num_servers, args.timeout, args.log_dir)
    if any(code is None for code in codes):
        sys.stderr.write("error: the job did not finish within --timeout %g s; all processes were "
                         "stopped\n" % args.timeout)
        return 1
    return max(abs(code) for code in codes)


if __name__ == "__main__":
    sys.exit(main())
