"""Downstream evaluation: the weighted-sum featurizer, task heads, metrics, CTC decoding, scoring
and the hidden-state cache that frozen-upstream tasks train on."""

from .featurizer import WeightedSum
from .metrics import ErrorCounts, accuracy, equal_error_rate, error_counts

__all__ = ["WeightedSum", "ErrorCounts", "accuracy", "equal_error_rate", "error_counts"]
