"""Our span masks against fairseq's ``compute_mask_indices`` (HuBERT's and wav2vec 2.0's settings) over 10,000
draws per length: the masked share, the number of spans and the span lengths agree within stated tolerances.

fairseq picks span starts in ``[0, L - M)`` and we in ``[0, L - M]`` (a span may end on the last frame), and
fairseq cuts every row of a batch down to the fewest masked frames in it (``require_same_masks``) while ours are
drawn per utterance; one utterance at a time the two are the same procedure, so the tolerances are sampling
noise plus that one start position (see docs/crosscheck.md)."""

import numpy as np
import pytest
import torch

from .conftest import reference

DRAWS = 10_000


def runs(row: np.ndarray):
    """Lengths of the runs of True in a bool row."""
    padded = np.concatenate([[False], row, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return edges[1::2] - edges[0::2]


def statistics(masks: np.ndarray):
    lengths = [runs(m) for m in masks]
    return {
        "share": masks.mean(),
        "share_std": masks.mean(1).std(),
        "runs": np.mean([len(r) for r in lengths]),
        "run_len": np.mean(np.concatenate(lengths)),
    }


@pytest.mark.parametrize("mask_prob,frames", [(0.8, 50), (0.8, 250), (0.65, 250), (0.8, 750)])
def test_span_mask_statistics_match_fairseq(mask_prob, frames):
    reference("fairseq")
    from fairseq.data.data_utils import compute_mask_indices

    from speechssl.nn.masking import span_mask

    np.random.seed(0)
    theirs = np.concatenate([compute_mask_indices((1, frames), None, mask_prob, 10, min_masks=2) for _ in range(DRAWS)])
    g = torch.Generator().manual_seed(0)
    ours = span_mask(torch.full((DRAWS,), frames), frames, mask_prob, 10, min_masks=2, generator=g).numpy()
    a, b = statistics(ours), statistics(theirs)
    # standard error of the share over 10,000 draws is below 0.002 at these lengths
    assert abs(a["share"] - b["share"]) < 0.006 + 1.0 / frames, (a, b)
    assert abs(a["share_std"] - b["share_std"]) < 0.1 * b["share_std"] + 0.002, (a, b)
    assert abs(a["runs"] - b["runs"]) < 0.03 * b["runs"], (a, b)
    assert abs(a["run_len"] - b["run_len"]) < 0.03 * b["run_len"], (a, b)
