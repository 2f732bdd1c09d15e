"""k-means targets for HuBERT: learn (faiss), assign (sharded, streaming), evaluate (PNMI)."""

from ..data.labels import check_label_counts, expected_label_frames
from .features import FeatureSource
from .kmeans import KMeansModel, assign_labels, learn_kmeans, read_labels
from .metrics import cluster_quality, evaluate_labels, label_set_quality

__all__ = [
    "FeatureSource",
    "KMeansModel",
    "assign_labels",
    "learn_kmeans",
    "read_labels",
    "check_label_counts",
    "expected_label_frames",
    "cluster_quality",
    "evaluate_labels",
    "label_set_quality",
]
