"""Train an embedding network with Embedding Expansion + HPHN-triplet (Ko & Gu, CVPR 2020).

    python3 main.py --data_name=demo --gpu_idx=-1 ...      # see README.md for the exact commands
    python3 main.py --save_dir=RUN --resume=auto           # continue RUN with its own flags

Parse the flags (a resume takes them from the run's args.json); check every input while building
the loss, the devices, the network, the data and the training parts (``train.setup``,
``train.parts``), writing nothing; only then open the run folder and train (``train.loop``).
"""
import sys

from utils.environment import (allow_deep_hybridization, check_mxnet_loads, check_numpy_version,
                               prefer_passive_openmp)

check_numpy_version()
prefer_passive_openmp()  # before MXNet loads OpenMP: threads sleep, not spin, on busy cores
check_mxnet_loads()

import os  # noqa: E402

import model  # noqa: E402
from loss import wants_unit_embeddings  # noqa: E402
from loss.factory import build_loss_from_args  # noqa: E402
from train import setup  # noqa: E402
from train.loop import TrainingLoop  # noqa: E402
from train.options import build_full_parser, validate_args  # noqa: E402
from train.parts import build_training_parts  # noqa: E402
from train.step import NonFiniteError  # noqa: E402
from utils import logs  # noqa: E402
from utils.run import folder as run_folder  # noqa: E402
from utils.run.interrupts import Interrupts, RunInterrupted  # noqa: E402
from utils.summary import TrainingSummary  # noqa: E402


def parse(argv):
    """The run's flags, and for a resume its args.json and the flags this command changes."""
    parser = build_full_parser()
    args = parser.parse_args(argv)
    if not args.resume:
        return args, None, {}, None
    given = run_folder.given_flags(parser, argv)
    folder, wanted = run_folder.resume_target(args.resume, args.save_dir, "save_dir" in given)
    previous = run_folder.read_args(folder)
    args, changed = run_folder.resume_args(parser, given, previous)
    args.save_dir = folder
    return args, previous, changed, wanted


def build(args, wanted):
    """Check every input and build what trains, writing nothing: ``(TrainingParts, TrainingState)``."""
    validate_args(args)
    loss_fn = build_loss_from_args(args)  # the loss's own rules too: before devices or data
    ctx = setup.devices(args)
    setup.check_host(args)  # needs no network
    net = model.build_network(args.backbone, args.embed_dim, l2_normalize=wants_unit_embeddings(args.loss))
    model.check_image_size(args.backbone, args.image_size)
    loaders = setup.training_data(args)
    return build_training_parts(args, wanted, net, loss_fn, ctx, loaders)


def run(argv, interrupts):
    args, previous, changed, wanted = parse(argv)
    parts, state = build(args, wanted)
    interrupts.defer_all()  # from the first write on, a signal stops the run only where it is whole
    with interrupts.deferred(raise_after=False):  # the loop's first checkpoint comes before a stop
        setup.open_run_folder(args, parts, state, previous, changed)
    summary = TrainingSummary(args.save_dir if parts.is_chief else None)
    loop = TrainingLoop(args, parts, state, summary, interrupts)
    results = loop.run(fresh=not args.resume or parts.restarted)
    loop.finish()
    return results


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    logs.start()
    # Before the data loaders fork their workers, which inherit the handlers (utils.run.interrupts).
    interrupts = Interrupts().install()
    try:
        run(argv, interrupts)
    except NonFiniteError as error:  # training diverged (the loss, or every test embedding)
        sys.stderr.write("error: %s\n" % error)
        return 1
    except ValueError as error:  # bad input, a full or read-only disk (StorageError), a bad image
        sys.stderr.write("error: %s\n" % error)
        return 2
    except RunInterrupted as stop:
        path = getattr(stop, "checkpoint", None)
        if path:
            sys.stderr.write("interrupted by %s; checkpoint %s written: resume with --resume=auto "
                             "(python3 main.py --save_dir=%s --resume=auto)\n"
                             % (stop, os.path.basename(path), os.path.dirname(path)))
        else:
            sys.stderr.write("interrupted by %s before training began; nothing was written\n" % stop)
        return 130
    finally:
        interrupts.uninstall()
        logs.close()
    return 0


if __name__ == "__main__":
    allow_deep_hybridization()
    sys.exit(main())
