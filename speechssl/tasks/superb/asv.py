"""ASV: speaker verification, an x-vector trained with AM-softmax on the train speakers, cosine scoring
of ``test/trials``, EER."""

from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

import torch
from torch import nn

from ...downstream.heads import SpeakerEmbedding
from ...downstream.metrics import equal_error_rate
from ...errors import InputError, MissingInputError
from ...utils.atomic import write_text
from ...utils.text import read_text_lines
from .base import Scored, Split, XVectorHeadConfig, register
from .classification import UtteranceClassification


@register
class SpeakerVerification(UtteranceClassification):
    name, metric, higher_is_better, order = "asv", "EER", False, 4
    head_config = XVectorHeadConfig
    splits = ("train", "test")
    select_on_dev = False

    def targets(self) -> Tuple[Dict[str, Dict[str, Any]], Any]:
        train_only = {"train": self.dirs["train"]}
        dirs, self.dirs = self.dirs, train_only
        try:
            targets, num_out = super().targets()
        finally:
            self.dirs = dirs
        return targets, num_out

    def split_targets(self, split: str, targets) -> Optional[Dict[str, Any]]:
        # test utterances are scored by trials, not labels: every one of them is embedded
        return targets["train"] if split == "train" else {u: 0 for u in self.dirs[split].utt_ids}

    def head(self, dim: int, cfg: XVectorHeadConfig, num_out) -> nn.Module:
        return SpeakerEmbedding(
            dim, num_out, cfg.xvector_channels, cfg.xvector_pool, cfg.xvector_embed, cfg.margin, cfg.scale
        )

    def loss(self, head_out, targets, head) -> torch.Tensor:
        return head.am_softmax(head_out, torch.tensor(targets, device=head_out.device))

    def score(self, outputs, split: Split, write: bool) -> Scored:
        trials_file = self.data_root / "test" / "trials"
        if not trials_file.exists():
            raise MissingInputError(f"{trials_file}: missing (ASV needs a trial list)")
        emb = {}
        for ids, out in outputs:
            emb.update(zip(ids, nn.functional.normalize(out, dim=-1)))
        scores, labels, rows = [], [], []
        for n, line in enumerate(read_text_lines(trials_file), 1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 3 or parts[2] not in ("target", "nontarget"):
                raise InputError(f"{trials_file}:{n}: expected 'enroll_utt test_utt target|nontarget', got {line!r}")
            a, b, lab = parts
            for u in (a, b):
                if u not in emb:
                    raise InputError(f"{trials_file}:{n}: utterance {u} is not in {split.data.path}")
            s = float(emb[a] @ emb[b])
            scores.append(s)
            labels.append(lab == "target")
            rows.append(f"{a} {b} {s:.5f} {lab}")
        eer, threshold = equal_error_rate(scores, labels)
        if write:
            self.out.mkdir(parents=True, exist_ok=True)
            write_text(self.out / "scores.txt", "\n".join(rows) + "\n")
        return Scored(eer, len(scores), {"threshold": threshold})
