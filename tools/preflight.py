"""Before a long run on a new host: can MXNet load, which GPUs does it see, is /dev/shm big enough.

    python3 -m tools.preflight                     # training on GPUs, main.py's seed command's loaders
    python3 -m tools.preflight --device cpu        # training on the CPU (no GPU needed)
    python3 -m tools.preflight --batch_size 128 --image_size 227 --num_workers 10

Prints one line per check, then the verdict. Exit codes:

- 0: ready, every check that matters for --device passed;
- 1: not ready, a check that matters for --device failed (its line starts with FAIL and says
  why and what to do): no GPU MXNet can use for --device=gpu, too little shared memory for the
  loaders. A machine without GPUs is no failure for --device=cpu (its line is informational);
- 2: a bad flag, or NumPy or MXNet cannot be imported at all (one ``error:`` line).
"""
import sys

from utils.errors import OneLineParser
from utils.environment import check_mxnet_loads, check_numpy_version

DEVICES = ("gpu", "cpu")


def build_parser():
    parser = OneLineParser(prog="python3 -m tools.preflight", description=__doc__.split("\n\n")[0],
                           epilog="exit codes: 0 ready for --device; 1 a check that matters for "
                                  "--device failed (the FAIL line says which); 2 a bad flag, or "
                                  "NumPy/MXNet cannot be imported")
    parser.add_argument("--device", default="gpu", choices=DEVICES,
                        help="what the run will train on: gpu (default) needs a GPU MXNet can use; "
                             "cpu needs none")
    parser.add_argument("--batch_size", type=int, default=128)
    parser.add_argument("--image_size", type=int, default=227)
    parser.add_argument("--num_workers", type=int, default=10)
    parser.add_argument("--prefetch", type=int, default=None)
    return parser


def main(argv=None):
    """Run the checks; returns the exit code (see the module docstring)."""
    args = build_parser().parse_args(argv)
    check_numpy_version()
    check_mxnet_loads()
    import mxnet as mx

    from utils.devices import visible_gpus, no_gpu_cause
    from utils.host import MB, check_shared_memory

    features = mx.runtime.Features()
    print("mxnet %s: CUDA %s, cuDNN %s, NCCL %s, oneDNN %s" % (
        mx.__version__, *("yes" if features.is_enabled(name) else "no"
                          for name in ("CUDA", "CUDNN", "NCCL", "MKLDNN"))))
    failed = []
    gpus = visible_gpus()
    for index in range(gpus):
        free, total = mx.context.gpu_memory_info(index)
        print("gpu %d: %d MB of %d MB free" % (index, free // MB, total // MB))
    if not gpus and args.device == "gpu":
        failed.append("no GPU")
        print("FAIL no GPU: %s; or check for training on the CPU: --device cpu" % no_gpu_cause())
    elif not gpus:
        print("no GPU (not needed for --device cpu): %s" % no_gpu_cause())
    try:
        needed = check_shared_memory(args.batch_size, args.image_size, args.num_workers, args.prefetch)
        print("shared memory: the loaders need about %d MB; /dev/shm has enough" % (-(-needed // MB)))
    except ValueError as error:
        failed.append("shared memory")
        print("FAIL shared memory: %s" % error)
    if failed:
        print("not ready to train on the %s: %s (exit 1)" % (args.device.upper(), ", ".join(failed)))
        return 1
    print("ready to train on the %s" % args.device.upper())
    return 0


if __name__ == "__main__":
    sys.exit(main())
