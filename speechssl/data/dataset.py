"""Audio + frame-label datasets for pretraining, on Kaldi data dirs."""

from __future__ import annotations

import logging
import zlib
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch

from ..constants import SAMPLE_RATE
from ..data.labels import check_label_counts
from ..errors import InputError, MissingInputError
from .kaldi_dir import DataDir

log = logging.getLogger(__name__)


@dataclass
class LabelSet:
    """Frame labels of one target set: ``{utt: [frames]}``, with their rate and codebook size."""

    labels: Dict[str, np.ndarray]
    rate: float
    num_classes: int
    source: str = ""


def utterance_seed(seed: int, epoch: int, utt: str) -> int:
    """A stable per-utterance, per-epoch seed: crops and masks do not depend on batch or rank."""
    return (zlib.crc32(utt.encode()) * 1_000_003 + seed * 7919 + epoch * 104_729) % (2**31)


class AudioLabelDataset(torch.utils.data.Dataset):
    """Utterances of a data dir with their label sets, cropped to ``crop_seconds``.

    Indexed by ``(utt, epoch)`` (what the batch sampler yields) or by ``utt`` (epoch 0). Labels are checked against the
    audio length at construction (a mismatch names the utterance). Crops are aligned: a crop
    starts on a label boundary of the coarsest label set, so labels and audio stay in step.
    """

    def __init__(
        self,
        data_dir,
        label_sets: Sequence[LabelSet] = (),
        crop_seconds: Optional[float] = None,
        min_seconds: float = 0.0,
        sample_rate: int = SAMPLE_RATE,
        normalize: bool = False,
    ):

        self.data = DataDir.read(data_dir)
        self.label_sets = list(label_sets)
        self.sample_rate = sample_rate
        self.normalize = normalize  # zero mean, unit variance per utterance (wav2vec2 large's `normalize`)
        self.crop = int(crop_seconds * sample_rate) if crop_seconds else None
        durs = self.data.utt2dur or self.data.compute_utt2dur()
        self.durations = {u: durs[u] for u in self.data.utt_ids}
        short = [u for u, d in self.durations.items() if d < min_seconds]
        if short:
            log.info("%s: leaving out %d utterances shorter than %.2f s", data_dir, len(short), min_seconds)
        self.utts = [u for u in self.data.utt_ids if self.durations[u] >= min_seconds]
        if not self.utts:
            raise InputError(f"{data_dir}: no utterances of at least {min_seconds} s")
        samples = {u: int(round(self.durations[u] * sample_rate)) for u in self.utts}
        for ls in self.label_sets:
            check_label_counts(ls.labels, samples, ls.rate, source=ls.source or str(data_dir))
        self.seed = 0
        # crops start on a multiple of this many samples (a frame of every label set)
        self._align = int(np.lcm.reduce([int(round(sample_rate / ls.rate)) for ls in self.label_sets] or [1]))

    @property
    def seconds(self) -> Dict[str, float]:
        """Training length of each utterance (after cropping): what batching should count."""
        cap = self.crop / self.sample_rate if self.crop else float("inf")
        return {u: min(self.durations[u], cap) for u in self.utts}

    def __len__(self) -> int:
        return len(self.utts)

    def __getitem__(self, key) -> dict:
        utt, epoch = key if isinstance(key, tuple) else (key, 0)
        wav = self.data.load_audio(utt, self.sample_rate)
        seed = utterance_seed(self.seed, epoch, utt)
        start = 0
        if self.crop and len(wav) > self.crop:
            rng = np.random.default_rng(seed)
            start = int(rng.integers(0, (len(wav) - self.crop) // self._align + 1)) * self._align
            wav = wav[start : start + self.crop]
        if self.normalize:
            wav = (wav - wav.mean()) / max(float(wav.std()), 1e-5)
        labels = []
        for ls in self.label_sets:
            hop = int(round(self.sample_rate / ls.rate))
            lab = ls.labels[utt][start // hop :]
            labels.append(torch.from_numpy(np.asarray(lab, dtype=np.int64)))
        return {
            "utt": utt,
            "wav": torch.from_numpy(np.ascontiguousarray(wav)),
            "labels": labels,
            "seed": seed,
            "start": start,
        }


def collate_audio_labels(items: List[dict]) -> dict:
    """Pad waveforms (zeros) and labels (-100 = ignore) into a batch."""
    lengths = torch.tensor([it["wav"].shape[0] for it in items])
    wavs = torch.nn.utils.rnn.pad_sequence([it["wav"] for it in items], batch_first=True)
    labels = [
        torch.nn.utils.rnn.pad_sequence([it["labels"][i] for it in items], batch_first=True, padding_value=-100)
        for i in range(len(items[0]["labels"]))
    ]
    return {
        "utts": [it["utt"] for it in items],
        "wavs": wavs,
        "lengths": lengths,
        "labels": labels,
        "seeds": torch.tensor([it["seed"] for it in items]),
    }


class AudioTextDataset(AudioLabelDataset):
    """Utterances with their transcripts encoded by ``vocab`` (CTC targets), uncropped.

    Utterances longer than ``max_seconds`` are left out (and counted in the log); an utterance
    without a transcript is an error that names it."""

    def __init__(
        self,
        data_dir,
        vocab,
        text_file: str = "text",
        min_seconds: float = 0.0,
        max_seconds: Optional[float] = None,
        sample_rate: int = SAMPLE_RATE,
        normalize: bool = False,
    ):
        super().__init__(data_dir, (), None, min_seconds, sample_rate, normalize)
        table = self.data.text if text_file == "text" else self.data.extra.get(text_file)
        if table is None:
            raise MissingInputError(f"{data_dir}/{text_file}: no transcripts")
        missing = [u for u in self.utts if u not in table]
        if missing:
            raise InputError(
                f"{data_dir}/{text_file}: {len(missing)} utterances have no transcript "
                f"(first: {', '.join(missing[:5])}); fix with `speechssl data fix`"
            )
        if max_seconds:
            long = [u for u in self.utts if self.durations[u] > max_seconds]
            if long:
                log.info("%s: leaving out %d utterances longer than %.1f s", data_dir, len(long), max_seconds)
            self.utts = [u for u in self.utts if self.durations[u] <= max_seconds]
        self.texts = {u: table[u] for u in self.utts}
        self.targets = {u: vocab.encode(table[u], utt=u) for u in self.utts}
        empty = [u for u in self.utts if not self.targets[u]]
        if empty:
            raise InputError(f"{data_dir}/{text_file}: empty transcripts for {', '.join(empty[:5])}")

    def __getitem__(self, key) -> dict:
        item = super().__getitem__(key)
        item["tokens"] = torch.tensor(self.targets[item["utt"]], dtype=torch.long)
        return item


def collate_audio_text(items: List[dict]) -> dict:
    """:func:`collate_audio_labels` plus padded CTC ``targets [B, S]`` and ``target_lengths [B]``."""
    batch = collate_audio_labels(items)
    batch["targets"] = torch.nn.utils.rnn.pad_sequence([it["tokens"] for it in items], batch_first=True)
    batch["target_lengths"] = torch.tensor([len(it["tokens"]) for it in items])
    return batch
