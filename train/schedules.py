"""Learning-rate schedules over iterations: the original's MultiFactor one and the Symm release's.

The training loop calls ``scheduler(iteration)`` with the 0-based global iteration (the number of
updates already applied) and sets the result as the learning rate.
"""
import mxnet as mx


class StepThenFixedScheduler(mx.lr_scheduler.LRScheduler):
    """lr halved every ``halve_every`` iterations, then ``fixed_lr`` from ``fix_after`` on.

    The Symmetrical Synthesis release's schedule (Adam, 1e-4 halved every 5,000 steps, 1e-5 from
    step 15,000)::

        lr(t) = base_lr * factor ** floor(t / halve_every)     for t <  fix_after
        lr(t) = fixed_lr                                        for t >= fix_after

    with t the 0-based iteration. It is a pure function of t (no state), so resuming at any
    iteration gives the same learning rates as an uninterrupted run.

    Parameters
    ----------
    base_lr : float
        Learning rate at iteration 0.
    halve_every : int, default 5000
        Iterations between two decays.
    fix_after : int, default 15000
        First iteration of the fixed learning rate.
    fixed_lr : float, default 1e-5
        The learning rate from ``fix_after`` on.
    factor : float, default 0.5
        Multiplier at each decay.
    """

    def __init__(self, base_lr, halve_every=5000, fix_after=15000, fixed_lr=1e-5, factor=0.5):
        super().__init__(base_lr=base_lr)
        if int(halve_every) != halve_every or halve_every < 1:
            raise ValueError(f"halve_every must be a positive number of iterations, got {halve_every}.")
        if int(fix_after) != fix_after or fix_after < 0:
            raise ValueError(f"fix_after must be 0 or more iterations, got {fix_after}.")
        if not 0 < factor <= 1:
            raise ValueError(f"factor must be in (0, 1], got {factor}.")
        if not fixed_lr > 0:
            raise ValueError(f"fixed_lr must be positive, got {fixed_lr}.")
        self.halve_every = int(halve_every)
        self.fix_after = int(fix_after)
        self.fixed_lr = float(fixed_lr)
        self.factor = float(factor)

    def __call__(self, num_update):
        if num_update >= self.fix_after:
            return self.fixed_lr
        return self.base_lr * self.factor ** (int(num_update) // self.halve_every)

    def __repr__(self):
        return (f"{self.__class__.__name__}(base_lr={self.base_lr}, halve_every={self.halve_every}, "
                f"fix_after={self.fix_after}, fixed_lr={self.fixed_lr}, factor={self.factor})")


def build_lr_scheduler(kind, base_lr, steps=None, factor=0.5, halve_every=5000, fix_after=15000,
                       fixed_lr=1e-5):
    """A learning-rate scheduler over iterations.

    Parameters
    ----------
    kind : {'multifactor', 'step'}
        'multifactor': ``mx.lr_scheduler.MultiFactorScheduler(step=steps, factor=factor)`` starting
        at ``base_lr`` (the original's schedule: lr x factor at each iteration of ``steps``).
        'step': :class:`StepThenFixedScheduler` (``halve_every``, ``fix_after``, ``fixed_lr``;
        ``factor`` is the multiplier at each step).
    base_lr : float
    steps : list of int
        Strictly increasing positive iterations; required for 'multifactor'.
    """
    if kind == "multifactor":
        if not steps:
            raise ValueError("the multifactor schedule needs at least one decay iteration in steps.")
        scheduler = mx.lr_scheduler.MultiFactorScheduler(step=list(steps), factor=factor)
        scheduler.base_lr = base_lr
        return scheduler
    if kind == "step":
        return StepThenFixedScheduler(base_lr, halve_every, fix_after, fixed_lr, factor=factor)
    raise ValueError(f"unknown learning-rate schedule {kind!r}; valid: multifactor, step.")


def lr_scheduler_from_args(args, iters_per_epoch):
    """The scheduler selected by ``--lr_schedule`` (flags of loss/flags.py).

    multifactor: x --lr_decay_factor at each epoch of --lr_decay_epochs (converted to iterations);
    step: halved every --lr_step_iters iterations, --lr_fixed from --lr_fix_after_iters on.
    """
    return build_lr_scheduler(
        args.lr_schedule, args.lr,
        steps=[epoch * iters_per_epoch for epoch in args.lr_decay_epochs],
        factor=args.lr_decay_factor if args.lr_schedule == "multifactor" else 0.5,
        halve_every=args.lr_step_iters, fix_after=args.lr_fix_after_iters, fixed_lr=args.lr_fixed,
    )


def rate_flag(args, iteration):
    """``(name, value)`` of the flag that sets the learning rate at 0-based ``iteration``:
    ``lr_fixed`` once the step schedule has reached ``--lr_fix_after_iters``, else ``lr`` (which
    every other rate of the schedule is a multiple of). The flag to lower when training diverges."""
    if args.lr_schedule == "step" and iteration >= args.lr_fix_after_iters:
        return "lr_fixed", args.lr_fixed
    return "lr", args.lr
