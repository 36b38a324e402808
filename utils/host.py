"""What the host must provide before training starts: shared memory for the data loaders.

Gluon's DataLoader with worker processes hands every prepared batch over in shared memory
(``/dev/shm``), and keeps ``--prefetch`` batches in flight (MXNet's default: twice the number of
workers). The seed command's default, 10 workers at batch 128 and 227 px, holds about 400 MB there.
Docker gives a container 64 MB unless told otherwise; MXNet then waits 120 s and dies with a message
about shared memory that names none of the flags. This module says so before anything is written.
"""
import os
import shutil

SHM_DIR = "/dev/shm"
MB = 1 << 20  # what df and docker --shm-size call a megabyte


def batches_in_flight(num_workers, prefetch=None):
    """Batches a loader keeps prepared: ``--prefetch``, or MXNet's default of 2 per worker."""
    return 2 * num_workers if prefetch is None else prefetch


def loader_shared_memory(batch_size, image_size, num_workers, prefetch=None):
    """Bytes of shared memory the loaders keep in flight: ``prefetch`` uint8 batches
    (``batch_size x image_size x image_size x 3``) with their int32 labels; 0 without workers."""
    if not num_workers:
        return 0
    return batches_in_flight(num_workers, prefetch) * batch_size * (image_size * image_size * 3 + 4)


def check_shared_memory(batch_size, image_size, num_workers, prefetch=None, shm_dir=SHM_DIR):
    """Raise a one-line ``ValueError`` when ``shm_dir`` has too little free space for the loaders."""
    needed = loader_shared_memory(batch_size, image_size, num_workers, prefetch)
    if not needed or not os.path.isdir(shm_dir):
        return needed
    free = shutil.disk_usage(shm_dir).free
    if needed > free:
        raise ValueError(
            "the data loaders need about %d MB of shared memory (%d batches of %d images at %d px in "
            "flight: --num_workers=%d, --prefetch=%s) but %s has %d MB free; give the container more "
            "(docker run --shm-size=%dg, or --ipc=host), or lower --prefetch or --num_workers "
            "(--num_workers=0 uses none)"
            % (-(-needed // MB), batches_in_flight(num_workers, prefetch), batch_size, image_size, num_workers,
               "default" if prefetch is None else prefetch, shm_dir, free // MB, max(1, -(-2 * needed // (1 << 30)))))
    return needed


def usable_cores():
    """The CPU cores this process may run on (its affinity mask, e.g. a container's cpuset)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def workers_for_cores(num_workers, cores=None):
    """``(workers, notice)``: ``num_workers`` capped at the usable cores (more decoding processes than
    cores only compete for them, and each prefetches into shared memory); ``notice`` says so, or
    is None when nothing changed."""
    cores = usable_cores() if cores is None else cores
    if num_workers <= cores:
        return num_workers, None
    return cores, ("--num_workers=%d is more than the %d CPU core(s) this process may use; using %d "
                   "loader workers" % (num_workers, cores, cores))
