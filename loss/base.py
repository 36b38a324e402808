"""What a registered loss declares about itself (capabilities, flags), and the synthesis wiring EE
and Symm losses share. The rules the capabilities impose are ``loss.layout``'s; ``loss.flags`` and
``loss.factory`` read the declarations."""
from mxnet.gluon import HybridBlock

from ._candidates import build_expansion
from ._checks import check_bool, check_int
from .layout import check_layout
from .symmetrical_synthesis import SymmetricalSynthesis, check_symm_args


class MetricLoss(HybridBlock):
    """Base of the registry's losses (one level deep): capabilities, and the synthetic points.

    Capabilities, as class attributes that ``loss.factory`` and the tools read:

    - ``takes_ee``: combines with Embedding Expansion (``n_inner_pts > 0``).
    - ``pair_layout``: ``None`` (any layout), ``"pairs"`` (rows 2i, 2i+1 are anchor and positive,
      so num_instances is even) or ``"symm_pairs"`` (N classes x 2 images: num_instances is 2).
    - ``wants_unit_embeddings``: trained on L2-normalised embeddings (the network's head
      normalises); False for the losses of the Symm release, trained on raw embeddings.
    - ``symmetrical``: the synthetic points are Symmetrical Synthesis's (else EE's, or none).
    - ``needs_negatives``: the loss compares an anchor with images of other classes in its batch
      (every pair and tuple loss), so a batch must hold at least two classes:
      ``batch_size / num_instances >= 2`` (N classes x 2 images for the symmetrical ones). A batch
      of one class has no negative, and such a loss then learns nothing (or, HPHN in the release's
      form, only an artefact). False for a loss that needs none in the batch (e.g. one with class
      proxies).
    - ``uses_proxies``: the loss holds class proxies (``loss.proxy_base.ProxyLoss``): it needs the
      training classes (``attach_classes``) before it runs, and trains its proxies beside the network.

    Flags, also class attributes:

    - ``flags``: the loss's own command-line flags (``loss._flag.LossFlag``, declared in its file,
      a shared one in the file of the first loss that reads it); ``loss.flags`` adds them to the
      "loss options" group in registry order. The original release's flags the loss reads
      (``--margin``, ``--n_inner_pts``, ``--ee_l2norm``...) are main.py's "loss" group and are not
      listed. :meth:`synthesis_flags` adds Symmetrical Synthesis's for a symmetrical loss.
    - ``options_from_flags(args)`` (a classmethod each loss defines): its constructor's keyword
      arguments from the parsed flags.

    A symmetrical loss (``symmetrical = True``) takes N classes x 2 images, raw embeddings and no
    EE: those capabilities follow from it. The constructor arguments of the synthesis, shared by
    the losses that take them:

    - EE losses: ``num_instances`` (2; images per class in a batch, even when n_inner_pts > 0),
      ``n_inner_pts`` (0; synthetic points per pair, 0 disables EE), ``l2_norm`` (True;
      L2-normalise the synthetic points).
    - Symm losses: ``num_instances`` (must be 2), ``n_inner_pts`` (must be 0), ``symm_ratio``
      (2.0), ``symm_norm_ratio`` (1.0), ``symm_norm`` (False); see :class:`SymmetricalSynthesis`.

    A subclass calls :meth:`_attach_synthesis` in its constructor (after :meth:`_check_symm` when
    symmetrical), which checks the layout its capabilities impose (:meth:`_check_layout`, the
    rules ``loss.factory`` applies to the flags), and reads ``self.synthesis`` in
    ``hybrid_forward``: None, an :class:`EmbeddingExpansion` or a :class:`SymmetricalSynthesis`.
    """

    loss_name = None
    flags = ()
    takes_ee = False
    pair_layout = None
    wants_unit_embeddings = True
    symmetrical = False
    needs_negatives = True
    uses_proxies = False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("symmetrical"):
            cls.takes_ee, cls.pair_layout, cls.wants_unit_embeddings = False, "symm_pairs", False

    def _check_symm(self, num_instances, n_inner_pts, symm_ratio, symm_norm_ratio, symm_norm):
        """Validate the Symm arguments (before anything else is built); kept for the synthesis."""
        self._symm_args = check_symm_args(num_instances, n_inner_pts, symm_ratio, symm_norm_ratio,
                                          symm_norm, self.loss_name)
        return self._symm_args

    def _check_layout(self, num_instances, n_inner_pts=0, l2_norm=False):
        """The arguments' types, then the layout rules this class's capabilities impose
        (``loss.layout.check_layout``, the rules ``loss.factory`` applies to the flags); returns
        num_instances and n_inner_pts as ints."""
        num_instances = check_int("num_instances", num_instances, minimum=2 if self.pair_layout else 1)
        n_inner_pts = check_int("n_inner_pts", n_inner_pts, minimum=0)
        check_layout(type(self), self.loss_name, num_instances, n_inner_pts, check_bool("l2_norm", l2_norm))
        return num_instances, n_inner_pts

    def _attach_synthesis(self, num_instances, n_inner_pts=0, l2_norm=True):
        """``self.synthesis``: Symm's points when symmetrical, else EE's (None when n_inner_pts = 0);
        the layout is checked first (:meth:`_check_layout`)."""
        self._check_layout(num_instances, n_inner_pts, l2_norm)
        self.num_instances = num_instances
        with self.name_scope():
            if self.symmetrical:
                self.synthesis = SymmetricalSynthesis(*self._symm_args)
            else:
                self.synthesis = build_expansion(num_instances, n_inner_pts, l2_norm)

    @classmethod
    def synthesis_flags(cls):
        """The flags of the synthesis this loss uses: Symmetrical Synthesis's when symmetrical.
        (EE's, --n_inner_pts and --ee_l2norm, are the original release's, for every EE loss.)"""
        return SymmetricalSynthesis.flags if cls.symmetrical else ()

    @property
    def n_inner_pts(self):
        return getattr(self.synthesis, "n_inner_pts", 0)

    def _synthesis_repr(self, l2_norm_default=True):
        """The synthesis part of ``repr``: Symm's ratios, or num_instances, n_inner_pts, l2_norm."""
        s = self.synthesis
        if self.symmetrical:
            return f"symm_ratio={s.symm_ratio}, symm_norm_ratio={s.symm_norm_ratio}, symm_norm={s.symm_norm}"
        return (f"num_instances={self.num_instances}, n_inner_pts={self.n_inner_pts}, "
                f"l2_norm={getattr(s, 'l2_norm', l2_norm_default)}")
