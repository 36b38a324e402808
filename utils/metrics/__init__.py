"""Retrieval and clustering metrics as pure functions of NumPy arrays.

Query set = gallery set, a query never retrieves itself, one exact kNN serves every metric
(``knn_search``); Recall@K, MAP@R and R-precision (``retrieval``); k-means, NMI and pairwise F1
(``clustering``); unit rows, non-finite rows and embeddings that are one point (``embeddings``); all of them at once
(``evaluation``) and their names (``names``).
"""
from .clustering import cluster, nmi, pairwise_f1
from .embeddings import is_one_point, l2_normalize, non_finite_rows
from .evaluation import evaluate_embeddings
from .knn_search import FAISS_MISSING, knn, knn_of_queries, nearest_neighbors
from .names import DEFAULT_RECALLK, EVAL_METRICS, METRIC_KEYS, metric_keys
from .retrieval import map_at_r, r_precision, recall_at_k, retrieval_metrics

__all__ = ["DEFAULT_RECALLK", "EVAL_METRICS", "FAISS_MISSING", "METRIC_KEYS", "cluster",
           "evaluate_embeddings", "is_one_point", "knn", "knn_of_queries", "l2_normalize", "map_at_r", "metric_keys",
           "nearest_neighbors", "nmi", "non_finite_rows", "pairwise_f1", "r_precision", "recall_at_k",
           "retrieval_metrics"]
