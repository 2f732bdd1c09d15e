"""Kill-and-resume helpers shared by the training tasks' tests (issue 40, point 1)."""

from pathlib import Path

import torch


class Killed(Exception):
    """What a test raises in place of SIGKILL: the run stops between two steps, files as they are."""


def kill_after(step: int):
    """A Lightning callback that dies like a killed job once ``global_step`` reaches ``step``."""
    import lightning as L

    class KillAfter(L.Callback):
        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
            if trainer.global_step == step:
                raise Killed(step)

    return KillAfter()


def assert_same_weights(a: Path, b: Path, name: str = "model.safetensors", exact: bool = True) -> int:
    """Every tensor of ``a/name`` equals ``b/name``, bit for bit (float32 training is deterministic on one machine:
    a tolerance could hide a race); ``exact=False`` compares to 1e-5. Returns how many."""
    from safetensors.torch import load_file

    wa, wb = load_file(str(Path(a) / name)), load_file(str(Path(b) / name))
    assert wa.keys() == wb.keys()
    for k in wa:
        if exact:
            assert torch.equal(wb[k], wa[k]), f"{k}: differs (max {float((wb[k] - wa[k]).abs().max()):.3g})"
        else:
            torch.testing.assert_close(wb[k], wa[k], rtol=1e-5, atol=1e-6, msg=lambda m, k=k: f"{k}: {m}")
    return len(wa)
