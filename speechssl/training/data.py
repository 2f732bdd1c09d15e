"""A data module over in-memory train / valid datasets (TTS, ASD): shuffled, seeded training batches."""

import lightning as L
import torch


class SplitsDataModule(L.LightningDataModule):
    """Shuffled training batches; the first ``valid_count`` validation items in batches of ``valid_batch``."""

    def __init__(self, data_cfg, train, valid, collate, valid_count: int, valid_batch: int):
        super().__init__()
        self.data_cfg, self.train, self.valid, self.collate = data_cfg, train, valid, collate
        self.valid_count, self.valid_batch = valid_count, valid_batch

    def train_dataloader(self):
        d = self.data_cfg
        return torch.utils.data.DataLoader(
            self.train,
            d.batch_size,
            shuffle=True,
            drop_last=True,
            generator=torch.Generator().manual_seed(d.seed),
            collate_fn=self.collate,
            num_workers=d.num_workers,
        )

    def val_dataloader(self):
        if self.valid is None:
            return []
        subset = torch.utils.data.Subset(self.valid, list(range(min(self.valid_count, len(self.valid)))))
        return torch.utils.data.DataLoader(subset, self.valid_batch, collate_fn=self.collate)
