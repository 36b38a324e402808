"""Hardest-positive hardest-negative (HPHN) triplet loss, with optional Embedding Expansion."""
from ._checks import check_bool, check_real
from .base import MetricLoss
from .distance import pairwise_euclidean, same_label_mask
from .embedding_expansion import EmbeddingExpansion


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
    The computation mirrors the original MXNet release operator by operator, so values and
    gradients agree with it, including these consequences:

    - Distance to self is sqrt(1e-12) = 1e-6 and, being clipped, passes no gradient.
    - Ties in max/min pass the full gradient to every tied entry (MXNet's reduce backward).
    - A row with no negative at all (a batch of one class) gets d_neg(r) = its row maximum; every
      entry of that row ties, so the row maximum receives (n + 1) B times the gradient. For n = 0
      the loss value is then exactly ``margin`` while its gradient is (1 - B) times the gradient of
      the row maximum, not 0. The sampler never produces such batches (it puts several classes in
      each), so this matters only for misuse; it is kept to match the original.

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

    def __init__(
        self, margin=0.2, soft_margin=False, num_instances=2, n_inner_pts=0, l2_norm=True, **kwargs
    ):
        super().__init__(**kwargs)
        self.margin = check_real("margin", margin)
        self.soft_margin = check_bool("soft_margin", soft_margin)
        with self.name_scope():
            self.expansion = EmbeddingExpansion(num_instances, n_inner_pts, l2_norm)

    @property
    def n_inner_pts(self):
        return self.expansion.n_inner_pts

    @classmethod
    def options_from_flags(cls, args):
        return dict(margin=args.margin, soft_margin=args.soft_margin, l2_norm=args.ee_l2norm,
                    num_instances=args.num_instances, n_inner_pts=args.n_inner_pts)

    def hybrid_forward(self, F, embeddings, labels):
        n = self.n_inner_pts
        expanded, expanded_labels = self.expansion(embeddings, labels)  # (N, D), N = (n+1) B

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

        if self.soft_margin:
            return F.log(1 + F.exp(dist_ap - dist_an))
        return F.relu(dist_ap - dist_an + self.margin)

    def __repr__(self):
        return (
            f"{self.__class__.__name__}(margin={self.margin}, soft_margin={self.soft_margin}, "
            f"num_instances={self.expansion.num_instances}, n_inner_pts={self.n_inner_pts}, "
            f"l2_norm={self.expansion.l2_norm})"
        )
