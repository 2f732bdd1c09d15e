"""The cross-check against the reference code (fairseq, torchaudio, s3prl): run with `make crosscheck`,
from the reference venv that `make refs` builds (tools/refs/). Each test skips, naming what is absent,
anywhere else (the default suite included)."""

import pytest
import torch


def reference(module: str):
    """Import a reference package or skip, saying how to get it."""
    return pytest.importorskip(
        module,
        reason=f"{module} is a reference of the cross-check: build the reference "
        f"venv with `make refs` and run `make crosscheck`",
    )


@pytest.fixture(autouse=True)
def _deterministic():
    torch.manual_seed(0)
    yield


def assert_grad_close(ours: torch.Tensor, theirs: torch.Tensor, name: str, floor: float) -> None:
    """Within 1e-4 of the largest entry of that gradient; ``floor`` (a millionth of the model's largest gradient)
    keeps gradients that are zero in exact arithmetic (a key projection's bias) from failing on rounding."""
    err = (ours - theirs).abs().max()
    assert err <= 1e-4 * theirs.abs().max() + floor, f"{name}: gradient differs by {err:.3g}"
