"""Every epoch gets new batches, crops and masks: Lightning's own epoch hook reaches our batch sampler."""

import lightning as L
import torch

from speechssl.data.sampler import BucketBatchSampler


class _KeysSeen(L.LightningModule):
    """Records the ``(utt, epoch)`` keys of every batch; trains one dummy weight."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))
        self.seen = []

    def training_step(self, batch, _):
        self.seen.append(batch)
        return (self.w - 1).pow(2).sum()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_lightning_advances_the_bucket_sampler_epoch(tmp_path):
    durs = {f"u{i}": 1.0 + 0.1 * i for i in range(12)}
    sampler = BucketBatchSampler(list(durs), durs, 3.0, seed=0)
    keys_as_items = {key: key for key in ((u, e) for u in durs for e in range(3))}  # a dataset indexed by the keys
    loader = torch.utils.data.DataLoader(keys_as_items, batch_sampler=sampler, collate_fn=lambda keys: keys)
    model = _KeysSeen()
    L.Trainer(
        max_epochs=3,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
        accelerator="cpu",
    ).fit(model, loader)
    per_epoch = len(sampler)
    epochs = [[e for _, e in batch] for batch in model.seen]
    assert [set(e) for e in epochs] == [{i // per_epoch} for i in range(3 * per_epoch)]  # keys carry the epoch
    orders = [[tuple(u for u, _ in b) for b in model.seen[i * per_epoch : (i + 1) * per_epoch]] for i in range(3)]
    assert orders[0] != orders[1] or orders[1] != orders[2]  # the batch order is reshuffled
