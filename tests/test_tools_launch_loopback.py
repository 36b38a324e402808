"""tools.launch_loopback as a user meets it: it creates its log folder, every failure (a worker
that exits at start, a scheduler that cannot bind its port, a log folder that cannot be created) is
one line naming the process, its log and the last line of that log, and every process it started
is ended when the job fails or the launcher is interrupted. Loopback only, every job bounded."""
import errno
import os
import re
import signal
import socket
import subprocess
import sys
import time

import pytest

import tools.launch_loopback as launch_tool

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Children inherit these; the launcher sets the DMLC addresses itself, they are here for safety.
JOB_ENV = {"OMP_NUM_THREADS": "1", "DMLC_PS_ROOT_URI": "127.0.0.1", "DMLC_NODE_HOST": "127.0.0.1",
           "DMLC_INTERFACE": "lo"}
# A worker that notes it has started (a file per task) and then waits to be stopped.
WAITING_WORKER = [sys.executable, "-c", "import os, sys, time\n"
                  "open(sys.argv[1] % os.environ['DMLC_TASK_ID'], 'w').close()\ntime.sleep(600)"]


def start_launcher(*args):
    return subprocess.Popen([sys.executable, "-m", "tools.launch_loopback"] + list(args), cwd=ROOT,
                            env=dict(os.environ, **JOB_ENV), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def finish(proc, timeout=600):
    """``(exit code, stderr)`` of a launcher started by :func:`start_launcher`; killed if it hangs."""
    try:
        _, err = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    return proc.returncode, err


def error_lines(stderr):
    return [line for line in stderr.splitlines() if line.strip()]


def last_line(path):
    lines = [line.strip() for line in open(path, errors="replace").read().splitlines() if line.strip()]
    return lines[-1] if lines else ""


def _proc_stat(pid):
    """``(state, parent pid)`` of a process, or None when it is gone."""
    try:
        text = open("/proc/%d/stat" % pid).read()
    except OSError:
        return None
    fields = text.rsplit(")", 1)[1].split()
    return fields[0], int(fields[1])


def children_of(pid):
    pids = [int(name) for name in os.listdir("/proc") if name.isdigit()]
    return [child for child in pids if (_proc_stat(child) or ("", 0))[1] == pid]


def running(pids):
    """The processes of ``pids`` still running (a zombie has ended)."""
    return [pid for pid in pids if (_proc_stat(pid) or ("Z", 0))[0] != "Z"]


def processes_with_port(port):
    """Processes whose environment names ``port`` as the scheduler's (the job's processes)."""
    marker = b"\0DMLC_PS_ROOT_PORT=%d\0" % port
    found = []
    for name in os.listdir("/proc"):
        try:
            environ = b"\0" + open("/proc/%s/environ" % name, "rb").read()
        except OSError:
            continue
        if name.isdigit() and marker in environ:
            found.append(int(name))
    return running(found)


def kill_all(pids):
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


@pytest.fixture
def held_port():
    """A loopback port this test holds (bound and listening) for the whole test."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        yield sock.getsockname()[1]


@pytest.mark.dist
def test_a_missing_log_dir_is_created_and_a_two_worker_job_succeeds(tmp_path):
    log_dir = tmp_path / "logs" / "job"
    pattern = str(tmp_path / "sums-%d.npy")
    proc = start_launcher("-n", "2", "-s", "1", "--timeout", "600", "--log_dir", str(log_dir), "--",
                          sys.executable, "-m", "tests.dist_sum_job", "ordered", "3", pattern)
    code, err = finish(proc)
    assert code == 0 and "Traceback" not in err, "the job failed (%s): %s" % (code, err[-3000:])
    # (dist_sum_job logs no kvstore rank, so its logs keep their task names.)
    assert sorted(os.listdir(log_dir)) == ["scheduler.log", "server-0.log", "worker-task0.log",
                                           "worker-task1.log"], \
        "the log folder was created and holds every process's log: %s" % sorted(os.listdir(log_dir))
    assert all(os.path.exists(pattern % rank) for rank in (0, 1)), "both workers ran to the end"


def test_a_worker_given_a_bad_flag_is_one_line_naming_its_log(tmp_path):
    log_dir = tmp_path / "logs"
    log_dir.mkdir()
    proc = start_launcher("-n", "2", "--timeout", "600", "--log_dir", str(log_dir), "--",
                          sys.executable, "main.py", "--no_such_flag=1")
    code, err = finish(proc)
    lines = error_lines(err)
    assert code not in (0, None) and len(lines) == 1, "one line, exit non-zero (%s): %s" % (code, err[-3000:])
    assert "Traceback" not in err, err
    match = re.search(r"worker task (\d+)", lines[0])
    assert match, "the line names the worker: %s" % lines[0]
    log = os.path.join(str(log_dir), "worker-task%s.log" % match.group(1))
    assert log in lines[0], "the line names the worker's log %s: %s" % (log, lines[0])
    assert "unrecognized arguments: --no_such_flag=1" in last_line(log), "main.py's error ends the log"
    assert last_line(log) in lines[0], "the line quotes the log's last line %r: %s" % (last_line(log), lines[0])


def test_a_port_in_use_is_refused_before_anything_starts(tmp_path, held_port):
    log_dir = tmp_path / "logs"
    proc = start_launcher("-n", "1", "--port", str(held_port), "--timeout", "600", "--log_dir", str(log_dir),
                          "--", sys.executable, "-c", "pass")
    code, err = finish(proc)
    lines = error_lines(err)
    assert code == 2 and len(lines) == 1, "one line, exit 2 (%s): %s" % (code, err[-3000:])
    assert "port %d" % held_port in lines[0] and "in use" in lines[0], lines[0]
    assert not log_dir.exists(), "nothing is written before the port is checked"


@pytest.mark.dist
def test_a_scheduler_that_cannot_bind_ends_the_job_in_one_line(tmp_path, held_port, monkeypatch):
    # What happens when the port is taken after the check: MXNet's scheduler fails to bind and exits,
    # while the workers would wait for it forever. The launcher must see the scheduler's exit.
    from utils.loopback_job import launch

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    log_dir = tmp_path / "logs"
    worker = [sys.executable, "-c", "import mxnet as mx; mx.kv.create('dist_sync')"]
    try:
        result = launch(worker, num_workers=2, num_servers=1, timeout=600, log_dir=str(log_dir),
                        port=held_port)
        line = result.summary()
        assert not result.timed_out, "the launcher noticed the scheduler, not the timeout: %s" % line
        scheduler_log = str(log_dir / "scheduler.log")
        assert "scheduler" in line and scheduler_log in line and "\n" not in line, line
        assert "bind failed" in last_line(scheduler_log) and last_line(scheduler_log) in line, line
        assert processes_with_port(held_port) == [], "every process of the job was ended"
    finally:
        kill_all(processes_with_port(held_port))


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_an_interrupted_launcher_ends_every_process(tmp_path, signum):
    marker = str(tmp_path / "started-%s")
    (tmp_path / "logs").mkdir()
    proc = start_launcher("-n", "2", "-s", "1", "--timeout", "600", "--log_dir", str(tmp_path / "logs"),
                          "--", *WAITING_WORKER, marker)
    job = []
    try:
        deadline = time.time() + 300
        while not all(os.path.exists(marker % task) for task in (0, 1)):
            assert proc.poll() is None, "the launcher ended before its workers started: %s" % proc.stderr.read()
            assert time.time() < deadline, "the workers did not start within 300 s"
            time.sleep(0.2)
        job = children_of(proc.pid)
        assert len(job) == 4, "scheduler, server and two workers run: %s" % job
        proc.send_signal(signum)
        code, err = finish(proc)
        lines = error_lines(err)
        assert code == 130 and len(lines) == 1, "one line, exit 130 (%s): %s" % (code, err[-3000:])
        assert "interrupted by %s" % signal.Signals(signum).name in lines[0], lines[0]
        assert running(job) == [], "every process of the job was ended: %s still run" % running(job)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
        kill_all(running(job))


@pytest.mark.parametrize("where", ["a file", "below a file"])
def test_a_log_dir_with_a_file_in_the_way_is_one_line(tmp_path, capsys, where):
    blocker = tmp_path / "taken"
    blocker.write_text("not a folder")
    log_dir = str(blocker if where == "a file" else blocker / "logs")
    code = launch_tool.main(["-n", "1", "--log_dir", log_dir, "--", sys.executable, "-c", "pass"])
    lines = error_lines(capsys.readouterr().err)
    assert code == 2 and len(lines) == 1, "one line, exit 2 (%s): %s" % (code, lines)
    assert lines[0].startswith("error: ") and log_dir in lines[0] and "a file is in the way" in lines[0], lines[0]


def test_a_log_dir_that_cannot_be_created_is_one_line(tmp_path, capsys, monkeypatch):
    log_dir = str(tmp_path / "logs")
    real_mkdir = os.mkdir

    def refuse(path, *args, **kwargs):
        # The error mkdir gives below a folder this user may not write (os.makedirs calls os.mkdir).
        if str(path).startswith(str(tmp_path)):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
        return real_mkdir(path, *args, **kwargs)

    monkeypatch.setattr(os, "mkdir", refuse)
    code = launch_tool.main(["-n", "1", "--log_dir", log_dir, "--", sys.executable, "-c", "pass"])
    lines = error_lines(capsys.readouterr().err)
    assert code == 2 and len(lines) == 1, "one line, exit 2 (%s): %s" % (code, lines)
    assert lines[0].startswith("error: ") and log_dir in lines[0] and "permission denied" in lines[0], lines[0]
