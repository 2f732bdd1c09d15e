"""The SUPERB featurizer (:class:`~speechssl.nn.weighted_sum.WeightedSum`) and a plot of its learnt weights."""

from typing import List, Optional

from ..nn.weighted_sum import WeightedSum  # noqa: F401  (the featurizer, re-exported where downstream code looks)
from ..utils.atomic import atomic_path


def weights_plot(weights: List[float], path, title: Optional[str] = None) -> None:
    """A bar chart of learnt layer weights (layer 0 = encoder input) written to ``path`` (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(max(3.0, 0.35 * len(weights) + 1.5), 2.6))
    ax.bar(range(len(weights)), weights, color="#4472c4")
    ax.axhline(1 / len(weights), color="grey", lw=0.8, ls="--", label="uniform")
    ax.set_xlabel("hidden state (0 = encoder input)")
    ax.set_ylabel("softmax weight")
    ax.set_xticks(range(len(weights)))
    ax.legend(frameon=False, fontsize=8)
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
