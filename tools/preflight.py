"""Before a long run on a new host: can MXNet load, which GPUs does it see, is /dev/shm big enough.

    python3 -m tools.preflight                     # the defaults of main.py's seed command
    python3 -m tools.preflight --batch_size 128 --image_size 227 --num_workers 10

Prints one line per check and exits 0 when training on the GPUs can start, 1 when it cannot (each
failing line says why and what to do).
"""
import sys

from utils.errors import OneLineParser
from utils.environment import check_mxnet_loads, check_numpy_version


def main(argv=None):
    parser = OneLineParser(prog="python3 -m tools.preflight", description=__doc__.splitlines()[0])
    parser.add_argument("--batch_size", type=int, default=128)
    parser.add_argument("--image_size", type=int, default=227)
    parser.add_argument("--num_workers", type=int, default=10)
    parser.add_argument("--prefetch", type=int, default=None)
    args = parser.parse_args(argv)
    check_numpy_version()
    check_mxnet_loads()
    import mxnet as mx

    from utils.devices import visible_gpus, no_gpu_cause
    from utils.host import MB, check_shared_memory

    features = mx.runtime.Features()
    print("mxnet %s: CUDA %s, cuDNN %s, NCCL %s, oneDNN %s" % (
        mx.__version__, *("yes" if features.is_enabled(name) else "no"
                          for name in ("CUDA", "CUDNN", "NCCL", "MKLDNN"))))
    ok = True
    gpus = visible_gpus()
    if gpus:
        for index in range(gpus):
            free, total = mx.context.gpu_memory_info(index)
            print("gpu %d: %d MB of %d MB free" % (index, free // MB, total // MB))
    else:
        ok = False
        print("no GPU: %s" % no_gpu_cause())
    try:
        needed = check_shared_memory(args.batch_size, args.image_size, args.num_workers, args.prefetch)
        print("shared memory: the loaders need about %d MB; /dev/shm has enough" % (-(-needed // MB)))
    except ValueError as error:
        ok = False
        print("shared memory: %s" % error)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
