"""A parameter-server job (scheduler, servers, workers) on this machine, on loopback only.

MXNet's own launcher (``mxnet/tools/launch.py --launcher local``) guesses the host's network
address; :func:`launch` pins every process to 127.0.0.1 and the ``lo`` interface, bounds the job
with a timeout, watches every process it started and ends all of them, whatever happens: the job
ends, the timeout passes, any one process fails (the others would wait for it forever in the
kvstore), or the launcher gets SIGINT, SIGTERM or SIGHUP (:class:`LaunchInterrupted`).

A failure is one line (:meth:`JobResult.summary`): which process, how it ended, its log and the
last line of that log, where a worker's command or MXNet writes the cause.
"""
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

LOOPBACK = "127.0.0.1"
# The scheduler and the servers are MXNet itself: importing mxnet with DMLC_ROLE set serves the
# kvstore until the workers are done.
SERVER_COMMAND = [sys.executable, "-c", "import mxnet"]
RANK_LINE = re.compile(r"kvstore rank (\d+) of \d+ workers")  # what main.py logs (train.optimizer)
LAST_LINE_CHARS = 400  # a last line longer than this is cut (one line in a terminal, roughly)
STOP_GRACE = 10.0  # seconds between SIGTERM and SIGKILL when the job is stopped


def free_port():
    """A TCP port of 127.0.0.1 that nothing holds now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


def check_port_free(port):
    """ValueError (one line) unless the scheduler could bind ``port`` of 127.0.0.1 now."""
    if not 1 <= port <= 65535:
        raise ValueError("--port %d is not a TCP port; give one in 1-65535 or leave --port out for a "
                         "free one" % port)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # As the scheduler's ZeroMQ socket binds: a port left in TIME_WAIT by an earlier job is free.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((LOOPBACK, port))
        except OSError as error:
            raise ValueError("port %d of %s is in use (%s); give another --port or leave it out for a "
                             "free one" % (port, LOOPBACK, error.strerror or error)) from None


def check_command(command):
    """ValueError (one line) unless ``command[0]`` is a program this machine can start."""
    program = command[0]
    found = (os.access(program, os.X_OK) and not os.path.isdir(program)) if os.sep in program \
        else shutil.which(program)
    if not found:
        raise ValueError("the worker command %r cannot be started: %s is not an executable program"
                         % (" ".join(command), program))


def make_log_dir(log_dir):
    """Create ``log_dir`` (and its parents); ValueError (one line) when it cannot be."""
    try:
        os.makedirs(log_dir, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise ValueError("cannot create the log folder %s: a file is in the way; give --log_dir a "
                         "folder path" % log_dir) from None
    except OSError as error:
        raise ValueError("cannot create the log folder %s: %s; give a --log_dir you can write"
                         % (log_dir, (error.strerror or str(error)).lower())) from None


def role_env(role, num_workers, num_servers, port, task_id):
    """The environment of one process of the job: ps-lite's variables, all on loopback."""
    env = dict(os.environ)
    env.update({
        "DMLC_ROLE": role, "DMLC_PS_ROOT_URI": LOOPBACK, "DMLC_PS_ROOT_PORT": str(port),
        "DMLC_NODE_HOST": LOOPBACK, "DMLC_INTERFACE": "lo", "DMLC_NUM_WORKER": str(num_workers),
        "DMLC_NUM_SERVER": str(num_servers), "DMLC_TASK_ID": str(task_id),
        "DMLC_JOB_CLUSTER": "local",
    })
    return env


def last_line(path):
    """The last non-empty line of a log (its tail only is read), cut to LAST_LINE_CHARS; None when
    the file cannot be read."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - 64 * 1024))
            tail = handle.read().decode("utf-8", errors="replace")
    except OSError:
        return None
    lines = [line.strip() for line in tail.splitlines() if line.strip()]
    line = lines[-1] if lines else ""
    return line if len(line) <= LAST_LINE_CHARS else line[:LAST_LINE_CHARS] + " ..."


class JobProcess:
    """One process of the job: its role (``scheduler``, ``server``, ``worker``), its index among
    those of its role (the task id), the ``Popen`` and the path of its log (None: the console)."""

    def __init__(self, role, index, popen, log_path):
        self.role, self.index, self.popen, self.log_path = role, index, popen, log_path

    def failed(self):
        """Ended with a non-zero code or by a signal."""
        return self.popen.poll() not in (None, 0)

    def ending(self):
        """How it ended: ``exited with 2``, ``was killed by SIGKILL``."""
        code = self.popen.returncode
        if code < 0:
            try:
                return "was killed by %s" % signal.Signals(-code).name
            except ValueError:
                return "was killed by signal %d" % -code
        return "exited with %d" % code


class LaunchInterrupted(Exception):
    """The launcher got SIGINT, SIGTERM or SIGHUP; every process of the job has been stopped."""

    def __init__(self, signum):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class _StopSignals:
    """SIGINT, SIGTERM and SIGHUP raise :class:`LaunchInterrupted` while the job is watched. While
    processes start and while they are stopped (:meth:`hold`), a signal is only noted: raised in the
    middle of a start, it would leave a process the launcher does not know of; in the middle of the
    stop, one it never ends. SIGHUP is left alone when ignored (``nohup``)."""

    def __init__(self):
        self.received, self.holding, self._previous = None, True, {}

    def install(self):
        if threading.current_thread() is not threading.main_thread():
            return self  # signal handlers can only be set in the main thread
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            if signum == signal.SIGHUP and signal.getsignal(signum) == signal.SIG_IGN:
                continue
            self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def restore(self):
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}

    def _handle(self, signum, frame):
        self.received = self.received or signum
        if not self.holding:
            raise LaunchInterrupted(signum)

    def hold(self):
        self.holding = True

    def release(self):
        """Raise for a signal noted while holding, else let the next one raise at once."""
        self.holding = False
        if self.received:
            raise LaunchInterrupted(self.received)


def _stop_all(procs, grace=STOP_GRACE):
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


def _name_logs_by_rank(workers):
    """worker-task<N>.log → worker-<rank>.log, the rank the kvstore gave (main.py logs it); each
    worker's ``log_path`` follows. Returns ``{task: rank}``."""
    ranks = {}
    for worker in workers:
        try:
            with open(worker.log_path, errors="replace") as handle:
                match = RANK_LINE.search(handle.read())
        except OSError:
            continue
        if match:
            renamed = os.path.join(os.path.dirname(worker.log_path), "worker-%s.log" % match.group(1))
            os.replace(worker.log_path, renamed)
            worker.log_path = renamed
            ranks[worker.index] = int(match.group(1))
    return ranks


def _describe_failure(process, port, ranks):
    """The failed process, how it ended, and what its log says last."""
    if process.role == "scheduler":
        who = "the scheduler (%s:%d)" % (LOOPBACK, port)
    elif process.role == "server":
        who = "server %d" % process.index
    else:
        rank = ranks.get(process.index)
        who = "worker task %d%s" % (process.index, "" if rank is None else " (kvstore rank %d)" % rank)
    if process.log_path is None:
        said = "its output is above (--log_dir keeps each process's output in a file)"
    else:
        line = last_line(process.log_path)
        said = ("%s ends with: %s" % (process.log_path, line) if line
                else "%s is %s" % (process.log_path, "empty" if line == "" else "unreadable"))
    return who, process.ending(), said


class JobResult:
    """What became of a job: the workers' exit codes (negative: the signal that ended them), the task
    id of the worker that failed (None: none, or the failure was the scheduler's or a server's), the
    kvstore rank of each worker task, whether the timeout ended it, and the failure (who, how, what
    its log says last) or None."""

    def __init__(self, codes, failed_task, ranks, timed_out, failure=None, log_dir=None, timeout=None):
        self.codes, self.failed_task, self.ranks, self.timed_out = codes, failed_task, ranks, timed_out
        self.failure, self.log_dir, self.timeout = failure, log_dir, timeout

    def summary(self):
        """One line on a job that did not succeed (empty when it did)."""
        if self.timed_out:
            where = "; the logs are in %s" % self.log_dir if self.log_dir else ""
            return "the job did not finish within the timeout of %g s; every process of it was stopped%s" % (
                self.timeout, where)
        if self.failure is None:
            return ""
        who, how, said = self.failure
        return "%s %s; every other process of the job was stopped; %s" % (who, how, said)


def _start_process(cmd, role, index, env, log_path, procs, outs):
    """Start one process of the job, its output in ``log_path`` (the console when None); its Popen
    joins ``procs`` and its open log ``outs``, for the launcher to stop and close them all.

    Raises
    ------
    ValueError
        The log cannot be written, or the command cannot be started.
    """
    try:
        out = open(log_path, "w") if log_path else None
    except OSError as error:
        raise ValueError("cannot write the log %s: %s" % (log_path, error.strerror or error)) from None
    if out:
        outs.append(out)
    try:
        popen = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT if out else None,
                                 start_new_session=True)
    except OSError as error:
        raise ValueError("cannot start the %s %r: %s" % (role, " ".join(cmd), error.strerror or error)) from None
    procs.append(popen)
    return JobProcess(role, index, popen, log_path)


def _watch(services, workers, deadline, poll):
    """Wait, looking every ``poll`` seconds, until a process fails, every worker has succeeded, or
    ``deadline`` (a ``time.time()``) passes: ``(the failed JobProcess or None, timed out)``. The
    scheduler and the servers are looked at first: when one of them fails, the workers fail or
    hang because of it."""
    watched = services + workers
    while True:
        failed = next((process for process in watched if process.failed()), None)
        if failed is not None or all(worker.popen.poll() == 0 for worker in workers):
            return failed, False
        if time.time() > deadline:
            return None, True
        time.sleep(poll)


def launch(command, num_workers, num_servers, timeout, log_dir=None, port=None, poll=0.2):
    """Start the job and wait for it; returns a :class:`JobResult`.

    ``command`` runs once per worker (``DMLC_TASK_ID`` = 0 .. num_workers - 1). ``log_dir`` is
    created if missing; each process's output goes to ``scheduler.log``, ``server-<i>.log`` and
    ``worker-<kvstore rank>.log`` there (``worker-task<i>.log`` when no rank was logged), or to the
    console without it. ``port``: the scheduler's port (default: a free one); not checked here
    (:func:`check_port_free`): a scheduler that cannot bind it exits, and the job fails naming it.

    Every process is watched: when one fails (non-zero exit or a signal) every other is stopped at
    once; so is everything still running when the workers are done or at the timeout.

    Raises
    ------
    ValueError
        The command cannot be started, or the log folder cannot be created (nothing started).
    LaunchInterrupted
        SIGINT, SIGTERM or SIGHUP reached the launcher (every process stopped).
    """
    check_command(command)
    if log_dir:
        make_log_dir(log_dir)
    port = port or free_port()
    procs, outs, services, workers = [], [], [], []

    def start(cmd, role, index, log_name):
        log_path = os.path.join(log_dir, log_name) if log_dir else None
        env = role_env(role, num_workers, num_servers, port, index)
        return _start_process(cmd, role, index, env, log_path, procs, outs)

    deadline = time.time() + timeout
    signals = _StopSignals().install()
    try:
        try:
            services.append(start(SERVER_COMMAND, "scheduler", 0, "scheduler.log"))
            for index in range(num_servers):
                services.append(start(SERVER_COMMAND, "server", index, "server-%d.log" % index))
            for index in range(num_workers):
                workers.append(start(command, "worker", index, "worker-task%d.log" % index))
            signals.release()
            failed, timed_out = _watch(services, workers, deadline, poll)
        finally:
            signals.hold()
            _stop_all(procs)
            for out in outs:
                out.close()
        signals.release()
    finally:
        signals.restore()
    ranks = _name_logs_by_rank(workers) if log_dir else {}
    failure = _describe_failure(failed, port, ranks) if failed is not None else None
    failed_task = failed.index if failed is not None and failed.role == "worker" else None
    return JobResult([worker.popen.returncode for worker in workers], failed_task, ranks, timed_out,
                     failure, log_dir, timeout)
