"""The Gluon trainer of a run, and the kvstore that spreads it over devices and machines."""
import os
import pickle

import mxnet as mx

from train.ordered_sum import OrderedSumTrainer

# What a parameter-server launcher (tools.launch_loopback, MXNet's tools/launch.py) sets for each
# process; without them MXNet's kvstore fails in C++ (a check on DMLC_NUM_WORKER).
LAUNCHER_ENV = ("DMLC_ROLE", "DMLC_PS_ROOT_URI", "DMLC_PS_ROOT_PORT", "DMLC_NUM_WORKER", "DMLC_NUM_SERVER")


def check_kvstore(kvstore_name, ctx, environ=None):
    """One-line ValueError when this process cannot use the kvstore ``kvstore_name`` (a name of
    ``train.options.KVSTORES``): nccl without an MXNet built with NCCL or on CPU contexts (MXNet
    would stop at the first update, after the run folder is written), ``dist_*`` without the
    launcher's environment."""
    if kvstore_name == "nccl":
        if not mx.runtime.Features().is_enabled("NCCL"):
            raise ValueError("--kvstore=nccl needs an MXNet built with NCCL (the mxnet-cu* wheels); "
                             "this one is not: use --kvstore=device")
        if any(c.device_type != "gpu" for c in ctx):
            raise ValueError("--kvstore=nccl sums gradients over GPUs only, and the devices are %s: "
                             "use --kvstore=device" % ",".join(map(str, ctx)))
    if kvstore_name.startswith("dist"):
        environ = os.environ if environ is None else environ
        missing = [name for name in LAUNCHER_ENV if not environ.get(name)]
        if missing:
            raise ValueError(
                "--kvstore=%s needs a parameter-server launcher, which sets %s: start the workers "
                "with python3 -m tools.launch_loopback -n N -- python3 main.py ... on one machine, "
                "or with MXNet's tools/launch.py (docs/distributed.md)"
                % (kvstore_name, ", ".join(missing)))


def setup_kvstore(kvstore_name, ctx):
    """The kvstore, and this process's ``(rank, number of workers)``.

    ``dist_*`` creates the parameter-server kvstore (the launcher's environment tells it where);
    otherwise the name is kept for the Trainer when several devices share a batch, and no kvstore
    is used on one device. :func:`check_kvstore` first (ValueError).
    """
    check_kvstore(kvstore_name, ctx)
    if not kvstore_name.startswith("dist"):
        return (kvstore_name if len(ctx) > 1 else None), 0, 1
    kvstore = mx.kv.create(kvstore_name)
    return kvstore, kvstore.rank, kvstore.num_workers


def trained_parameters(net, loss_fn, args):
    """The network's parameters, then a proxy loss's proxies (learning rate x --proxy_lr_mult);
    the backbone's learning rate is scaled by --base_lr_mult."""
    net.backbone.collect_params().setattr("lr_mult", args.base_lr_mult)
    params = net.collect_params()
    if getattr(loss_fn, "proxies", None) is not None:
        loss_fn.proxies.lr_mult = args.proxy_lr_mult
        params.update(loss_fn.collect_params(".*proxies"))
    return params


def build_trainer(net, args, kvstore=None, loss_fn=None):
    """Adam or SGD over every parameter of :func:`trained_parameters`."""
    params = trained_parameters(net, loss_fn, args)
    if args.optim == "adam":
        options = {"learning_rate": args.lr, "wd": args.wd}
    else:
        options = {"learning_rate": args.lr, "wd": args.wd, "momentum": args.momentum}
    # Distributed: workers apply the updates themselves (the optimiser state then lives with the
    # worker and goes into its checkpoints); the kvstore only sums gradients, in an order fixed by
    # rank (train.ordered_sum), so that a job gives the same parameters every time it runs.
    if kvstore is not None and not isinstance(kvstore, str):
        return OrderedSumTrainer(params, args.optim, options, kvstore=kvstore,
                                 update_on_kvstore=False)
    return mx.gluon.Trainer(params, args.optim, options, kvstore=kvstore)


def broadcast_initial_parameters(trainer, kvstore):
    """Give every worker the chief's parameters, and make sure they have them, before any gradient
    is pushed.

    The Trainer does this lazily inside its first ``step``: a broadcast (rank 0 pushes, every worker
    pulls) and then, at once, the first push-pull of gradients. The pull and the push-pull share no
    engine variable, and ps-lite's request queue does not keep arrival order, so the server could
    answer the pull after it had summed the gradients (it holds no updater, so the sum replaces the
    value): that worker then started from the summed first gradient instead of the weights. Here
    the broadcast is done before the first update (after the first backward pass, so every
    parameter is initialised), its pulls are waited for, and a barrier holds every worker until all
    have theirs. On a resume the broadcast already ran in ``trainer.load_states``; the wait and the
    barrier still come first. MXNet 1.9 is the last release, so the Trainer's private steps used
    here will not move.
    """
    trainer._init_kvstore()
    if trainer._params_to_init:
        trainer._init_params()
    mx.nd.waitall()
    kvstore._barrier()


def _on_cpu(state):
    if isinstance(state, mx.nd.NDArray):
        return state.as_in_context(mx.cpu())
    if isinstance(state, (tuple, list)):
        return type(state)(_on_cpu(part) for part in state)
    return state


def device_free_states(trainer):
    """The trainer's optimiser state as ``Trainer.save_states`` writes it, with every array on the CPU.

    ``save_states`` pickles each state on the device it lives on (with several GPUs, where the
    kvstore put it), and unpickling needs that device: a run saved on 4 GPUs could not resume on
    fewer. Loaded with ``Trainer.load_states``, MXNet's updater moves each state to its weight's
    device at the first update, so these bytes resume on any device count, the CPU included.
    """
    if not trainer._kv_initialized:
        trainer._init_kvstore()
    if trainer._params_to_init:
        trainer._init_params()
    updater = trainer._kvstore._updater if trainer._update_on_kvstore else trainer._updaters[0]
    states = {index: _on_cpu(state) for index, state in updater.states.items()}
    return pickle.dumps((states, updater.optimizer))
