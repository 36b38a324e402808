"""The Gluon trainer of a run, and the kvstore that spreads it over devices and machines."""
import mxnet as mx


def setup_kvstore(kvstore_name, ctx):
    """The kvstore, and this process's ``(rank, number of workers)``.

    ``dist_*`` creates the parameter-server kvstore (the launcher's environment tells it where);
    otherwise the name is kept for the Trainer when several devices share a batch, and no kvstore
    is used on one device.
    """
    if not kvstore_name.startswith("dist"):
        return (kvstore_name if len(ctx) > 1 else None), 0, 1
    kvstore = mx.kv.create(kvstore_name)
    return kvstore, kvstore.rank, kvstore.num_workers


def build_trainer(net, args, kvstore=None):
    """Adam or SGD over every parameter, the backbone's learning rate scaled by --base_lr_mult."""
    net.backbone.collect_params().setattr("lr_mult", args.base_lr_mult)
    if args.optim == "adam":
        options = {"learning_rate": args.lr, "wd": args.wd}
    else:
        options = {"learning_rate": args.lr, "wd": args.wd, "momentum": args.momentum}
    # Distributed: workers apply the updates themselves (the optimiser state then lives with the
    # worker and goes into its checkpoints); the kvstore only sums gradients.
    distributed = kvstore is not None and not isinstance(kvstore, str)
    return mx.gluon.Trainer(net.collect_params(), args.optim, options, kvstore=kvstore,
                            update_on_kvstore=False if distributed else None)
