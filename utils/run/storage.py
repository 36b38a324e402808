"""Every file a run keeps is written here: atomically, durably, and with a one-line error.

A file is written to ``NAME.tmp``, flushed to the disk, and renamed over ``NAME``: a reader (or a
resume after a crash) sees the old file or the new one, never half of one. MXNet's own writers
(``save_parameters``, ``save_states``) report a full disk as a C++ traceback that never says so,
so they serialise into memory (a memfd on Linux) and the bytes are written here, where the OS error
is an ``OSError`` with its errno. Any write that fails removes its temporary file and raises
:class:`StorageError`, a ``ValueError`` whose message names the path, the cause and the fix.
"""
import errno
import hashlib
import json
import os
import shutil
import tempfile

from utils.run import faults

_CAUSES = {
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is exceeded",
    errno.EACCES: "permission denied (read-only or not writable)",
    errno.EPERM: "permission denied (read-only or not writable)",
    errno.EROFS: "the file system is read-only",
}


# What to do after a failed write: before training (nothing to resume yet), and during a run.
RUN_AGAIN_FIX = "free space or fix the permissions, then run again"
RESUME_FIX = "free space or fix the permissions, then resume with --resume=auto"


class StorageError(ValueError):
    """A run's file could not be written; the message is one line."""


def storage_error(error, path, fix):
    """The :class:`StorageError` of an ``OSError``: what could not be written, why (disk full,
    read-only, ...), and ``fix``. Raise it ``from None``."""
    cause = _CAUSES.get(error.errno, error.strerror or str(error))
    return StorageError("cannot write %s: %s; %s" % (path, cause, fix))


def _fsync_dir(folder):
    try:
        fd = os.open(folder or ".", os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems cannot sync a directory; the rename is still atomic
    finally:
        os.close(fd)


def _remove_quietly(path):
    try:
        os.remove(path)
    except OSError:
        pass


def write_bytes(path, data, fix=RUN_AGAIN_FIX):
    """Write ``data`` to ``path`` atomically and durably; raises :class:`StorageError`."""
    tmp_path = path + ".tmp"
    try:
        faults.before_write(path)
        with open(tmp_path, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_path, path)
    except OSError as error:
        _remove_quietly(tmp_path)
        raise storage_error(error, path, fix) from None
    _fsync_dir(os.path.dirname(path))


def write_json(path, payload, fix=RUN_AGAIN_FIX):
    """Write ``payload`` as indented, key-sorted JSON, atomically."""
    write_bytes(path, (json.dumps(payload, indent=2, sort_keys=True) + "\n").encode("utf-8"), fix)


def append_text(path, text, fix=RUN_AGAIN_FIX):
    """Append ``text`` to ``path`` and flush it to the disk (summary.csv rows)."""
    try:
        faults.before_write(path)
        with open(path, "a", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as error:
        raise storage_error(error, path, fix) from None


def link_or_copy(source, path, fix=RUN_AGAIN_FIX):
    """Make ``path`` hold the bytes of ``source`` (a hard link when the file system allows one, so
    the same parameters are stored once), atomically."""
    tmp_path = path + ".tmp"
    try:
        faults.before_write(path)
        _remove_quietly(tmp_path)
        try:
            os.link(source, tmp_path)
        except OSError as error:
            if error.errno in _CAUSES:
                raise
            shutil.copyfile(source, tmp_path)  # no hard links here (e.g. some network file systems)
        os.replace(tmp_path, path)
    except OSError as error:
        _remove_quietly(tmp_path)
        raise storage_error(error, path, fix) from None


def make_dirs(path, fix="choose a writable --save_dir"):
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as error:
        raise storage_error(error, path, fix) from None


def serialize(save):
    """The bytes ``save(path)`` writes (``net.save_parameters``, ``trainer.save_states``), made in
    memory so that writing them to the disk is this module's, with its errors."""
    if hasattr(os, "memfd_create"):
        fd = os.memfd_create("ee-gluon-serialize")
        try:
            save("/proc/self/fd/%d" % fd)
            size = os.lseek(fd, 0, os.SEEK_END)
            chunks, offset = [], 0
            while offset < size:
                chunks.append(os.pread(fd, size - offset, offset))
                offset += len(chunks[-1])
            return b"".join(chunks)
        finally:
            os.close(fd)
    with tempfile.TemporaryDirectory() as folder:  # no memfd (not Linux): a temporary file
        path = os.path.join(folder, "blob")
        save(path)
        with open(path, "rb") as handle:
            return handle.read()


def file_digest(path):
    """``{'size': bytes, 'sha256': hex}`` of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
            size += len(block)
    return {"size": size, "sha256": digest.hexdigest()}


def bytes_digest(data):
    return {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
