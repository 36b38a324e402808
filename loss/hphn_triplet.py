"""Hardest-positive hardest-negative (HPHN) triplet loss, with optional Embedding Expansion."""
from utils.flags import str2bool

from ._candidates import originals_block
from ._checks import check_bool, check_real
from ._flag import AT_LEAST_ZERO, LossFlag
from ._ops import distinct_synthetic_points, pick_max, pick_min
from .base import MetricLoss
from .distance import pairwise_euclidean, same_label_mask
from .embedding_expansion import EmbeddingExpansion

# The original release's HPHN flags (main.py's "loss" group), then this loss's own.
MARGIN = LossFlag("margin", 1e-5, float, "triplet margin of HPHN-triplet", range=AT_LEAST_ZERO)
SOFT_MARGIN = LossFlag("soft_margin", False, str2bool,
                       "HPHN-triplet with log(1 + exp(d_ap - d_an)) instead of the hinge")
HPHN_DISTINCT_POINTS = LossFlag(
    "hphn_distinct_points", False, str2bool,
    "hphn_triplet: mine the hardest negatives over the distinct EE points, each extreme "
    "picked once, so the gradient is the loss's derivative; False: the release's form, whose "
    "twin synthetic points tie and both take the gradient (docs/losses.md)")


class HPHNTripletLoss(MetricLoss):
    """HPHN triplet loss over a batch expanded by Embedding Expansion.

    From "Embedding Expansion: Augmentation in Embedding Space for Deep Metric Learning",
    Byungsoo Ko and Geonmo Gu, CVPR 2020, arXiv:2003.02546. With n_inner_pts = 0 it is the
    batch-hard triplet loss of Hermans et al., "In Defense of the Triplet Loss for Person
    Re-Identification", arXiv:1703.07737.

    With X the B original rows and E = [X; S_1; ...; S_n] the (n + 1) B rows produced by
    :class:`EmbeddingExpansion` (labels y tiled n + 1 times):

        d(a, b)  = sqrt(clip(|a|^2 + |b|^2 - 2 a.b, 1e-12, 1e12))
        d_ap(i)  = max over j < B of d(X_i, X_j) * [y_j == y_i]      (j = i included)
        d_neg(r) = min over columns c of E of
                   d(E_r, E_c) * [y_c != y_r] + max_c' d(E_r, E_c') * [y_c == y_r]
        d_an(i)  = min(d_neg(i), d_neg(i + B), ..., d_neg(i + nB))
        loss(i)  = relu(d_ap(i) - d_an(i) + margin)        or, with soft_margin,
        loss(i)  = log(1 + exp(d_ap(i) - d_an(i)))

    So the hardest positive is searched among the originals only, and the hardest negative among
    originals and synthetic points, for the original anchor and for each of its synthetic points.

    Two forms compute this same value and differ in the gradient (``distinct_points``):

    - **The release's form** (``distinct_points=False``, the default). The computation mirrors the
      original MXNet release operator by operator (the N x N matrix over every row of E, ``max``
      and ``min`` reductions), so values and gradients agree with it, including its ties.
      EE makes every synthetic point twice: S_k[2j + 1] = (k X[2j] + (n + 1 - k) X[2j + 1]) / (n + 1)
      is S_{n+1-k}[2j], the same inputs in the same arithmetic, so the two rows of E are equal.
      When an anchor's hardest negative is a synthetic point, its twin column can tie with it, and
      MXNet's ``min`` backward sends the full gradient to every tied entry: that negative is then
      pushed twice as hard, and the gradient is not the derivative of the loss. Whether a twin
      ties exactly is left to the round-off of the matrix product, as in the original
      (docs/losses.md, "HPHN: the release's form and the distinct points", has the measurements).
    - **Over the distinct points** (``distinct_points=True``). The columns are the B + nB/2 distinct
      points C = [X; S_1[0::2]; ...; S_n[0::2]] (as the other EE losses use them), the rows still
      every row of E (each original's anchor and its n synthetic points); d(E_r, C_c) is the same
      distance, and d_neg(r) = min over c of C with y_c != y_r (the row maximum of d(E_r, C) when
      there is none). Every maximum and minimum is selected with argmax/argmin and ``pick``, so
      the gradient reaches exactly one entry even at a tie; no tie is structural any more, and the
      gradient is the derivative of the value. The value equals the release's (twins are the same
      points) up to float round-off; the distance matrix is (n + 1) B x (1 + n / 2) B instead of
      (n + 1)^2 B^2.

    Other consequences of the release's form, kept in both (they are values, not ties):

    - Distance to self is sqrt(1e-12) = 1e-6 and, being clipped, passes no gradient.
    - A row with no negative at all (a batch of one class) gets d_neg(r) = its row maximum. In the
      release's form every entry of that row ties, so the row maximum receives (n + 1) B times the
      gradient: for n = 0 the loss value is then exactly ``margin`` while its gradient is (1 - B)
      times the gradient of the row maximum, not 0. Over distinct points the row maximum is taken
      once, and for n = 0 the gradient is 0, the derivative of the constant. Training never
      sees such batches: the loss needs negatives (``needs_negatives``), so ``loss.factory``
      refuses a --batch_size that holds a single class of --num_instances.

    The block reads no shape (sizes come from reshape codes and ``n_inner_pts``), so it hybridizes,
    also with ``static_alloc=True, static_shape=True``, and one hybridized block serves any batch
    size. The original class also took ``weight`` and ``batch_axis`` (from ``gluon.loss.Loss``) but
    never used them; they are not accepted here.

    Parameters
    ----------
    margin : float, default 0.2
        Margin of the hinge; ignored when ``soft_margin`` is true. (The original training script
        used 1e-5.)
    soft_margin : bool, default False
        Use log(1 + exp(.)) instead of the hinge.
    num_instances : int, default 2
        Images per class in a batch; must be even (see :class:`EmbeddingExpansion`).
    n_inner_pts : int, default 0
        Synthetic points per positive pair; 0 disables Embedding Expansion.
    l2_norm : bool, default True
        L2-normalise the synthetic points.
    distinct_points : bool, default False
        Compute the hardest negatives over the distinct points, so that the gradient is the
        derivative of the loss (see above); False is the release's form.

    Inputs:
        - **embeddings**: (B, D) embeddings, B even, normally L2-normalised, float32 or float64.
        - **labels**: (B,) class labels, any dtype.

    Outputs:
        - **loss**: (B,) one value per original row, dtype of ``embeddings``. The original trains on
          their sum (``backward()`` of the vector, ``trainer.step(1)``).

    Precondition: rows 2i and 2i + 1 share a class (the sampler's layout: num_instances consecutive
    rows per class). Only Embedding Expansion relies on it; with n_inner_pts = 0 any layout with an
    even B works.
    """

    loss_name = "hphn_triplet"
    takes_ee = True
    pair_layout = "pairs"
    flags = (HPHN_DISTINCT_POINTS,)

    def __init__(
        self, margin=0.2, soft_margin=False, num_instances=2, n_inner_pts=0, l2_norm=True,
        distinct_points=False, **kwargs
    ):
        super().__init__(**kwargs)
        self.margin = check_real("margin", margin)
        self.soft_margin = check_bool("soft_margin", soft_margin)
        self.distinct_points = check_bool("distinct_points", distinct_points)
        self._check_layout(num_instances, n_inner_pts, l2_norm)
        with self.name_scope():
            self.expansion = EmbeddingExpansion(num_instances, n_inner_pts, l2_norm)

    @property
    def n_inner_pts(self):
        return self.expansion.n_inner_pts

    @classmethod
    def options_from_flags(cls, args):
        return dict(margin=args.margin, soft_margin=args.soft_margin, l2_norm=args.ee_l2norm,
                    num_instances=args.num_instances, n_inner_pts=args.n_inner_pts,
                    distinct_points=args.hphn_distinct_points)

    def hybrid_forward(self, F, embeddings, labels):
        n = self.n_inner_pts
        expanded, expanded_labels = self.expansion(embeddings, labels)  # (N, D), N = (n+1) B
        if self.distinct_points:
            dist_ap, dist_an = self._hardest_over_distinct_points(
                F, embeddings, labels, expanded, expanded_labels
            )
            return self._hinge(F, dist_ap, dist_an)

        dist = pairwise_euclidean(F, expanded, expanded)  # (N, N)
        is_pos = same_label_mask(F, expanded_labels, expanded_labels, like=dist)
        is_neg = 1 - is_pos

        # Hardest positive, originals only: the top-left B x B block of the masked distances.
        # Rows: the first B (as many as `embeddings`); columns: the first of n + 1 blocks of B.
        dist_pos = dist * is_pos
        anchor_rows = F.slice_like(dist_pos, embeddings, axes=(0,))  # (B, N)
        first_block = F.slice_axis(
            F.reshape(anchor_rows, shape=(0, n + 1, -1)), axis=1, begin=0, end=1
        )  # (B, 1, B)
        dist_ap = F.max(F.reshape(first_block, shape=(0, -1)), axis=1)  # (B,)

        # Hardest negative of every row of E: same-label entries replaced by the row maximum.
        row_max = F.max(dist, axis=1, keepdims=True)  # (N, 1)
        dist_neg = dist * is_neg + F.broadcast_mul(row_max, is_pos)
        dist_an_rows = F.min(dist_neg, axis=1)  # (N,)
        # ... then the closest over an original and its synthetic points: rows i, i+B, ..., i+nB.
        dist_an = F.min(F.reshape(dist_an_rows, shape=(n + 1, -1)), axis=0)  # (B,)
        return self._hinge(F, dist_ap, dist_an)

    def _hinge(self, F, dist_ap, dist_an):
        if self.soft_margin:
            return F.log(1 + F.exp(dist_ap - dist_an))
        return F.relu(dist_ap - dist_an + self.margin)

    def _hardest_over_distinct_points(self, F, embeddings, labels, expanded, expanded_labels):
        """d_ap and d_an of every original (B,) with the columns restricted to the distinct points,
        each extreme picked once (the ``distinct_points`` form)."""
        n = self.n_inner_pts
        columns, column_labels = embeddings, labels
        if n:
            points, point_labels = distinct_synthetic_points(F, expanded, expanded_labels, n)
            columns = F.concat(embeddings, points, dim=0)  # (M, D), M = B + nB/2
            column_labels = F.concat(labels, point_labels, dim=0)
        dist = pairwise_euclidean(F, expanded, columns)  # (N, M)
        is_pos = same_label_mask(F, expanded_labels, column_labels, like=dist)

        # Hardest positive: originals against originals, the top-left B x B block.
        anchor_rows = F.slice_like(dist * is_pos, embeddings, axes=(0,))  # (B, M)
        dist_ap = pick_max(F, originals_block(F, anchor_rows, labels), axis=1)  # (B,)

        # Hardest negative of every row of E; same-label entries replaced by the row maximum.
        row_max = F.reshape(pick_max(F, dist, axis=1), shape=(-1, 1))  # (N, 1)
        dist_neg = dist * (1 - is_pos) + F.broadcast_mul(row_max, is_pos)
        dist_an_rows = pick_min(F, dist_neg, axis=1)  # (N,)
        dist_an = pick_min(F, F.reshape(dist_an_rows, shape=(n + 1, -1)), axis=0)  # (B,)
        return dist_ap, dist_an

    def __repr__(self):
        return (
            f"{self.__class__.__name__}(margin={self.margin}, soft_margin={self.soft_margin}, "
            f"num_instances={self.expansion.num_instances}, n_inner_pts={self.n_inner_pts}, "
            f"l2_norm={self.expansion.l2_norm}, distinct_points={self.distinct_points})"
        )
