"""Padded audio batches of a data dir for the batch jobs, with bad audio skipped and recorded on request."""

from __future__ import annotations

import logging
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

import torch
from tqdm import tqdm

from ..audio.io import AudioError
from ..data.kaldi_dir import DataDir

log = logging.getLogger(__name__)

Batch = Tuple[List[str], torch.Tensor, torch.Tensor]


def audio_batches(
    d: DataDir,
    batches: Iterable[Sequence[str]],
    sample_rate: int,
    skip_bad: bool,
    bad: Dict[str, str],
    desc: str,
    progress: bool = True,
    before_raise: Optional[Callable[[], None]] = None,
    on_skip: Optional[Callable[[str, str], None]] = None,
) -> Iterator[Batch]:
    """``(utterance ids, padded waveforms [B, T], lengths [B])`` per batch of ids.

    Unreadable audio raises its :class:`~speechssl.audio.io.AudioError` (naming the utterance), after
    ``before_raise()`` (a job commits what it has done); with ``skip_bad`` it is left out, its reason put in
    ``bad`` and passed to ``on_skip``. A batch whose every utterance is bad is not yielded.
    """
    batches = list(batches)
    bar = tqdm(total=sum(len(b) for b in batches), desc=desc, unit="utt", disable=not progress)
    try:
        for batch in batches:
            wavs = []
            for u in batch:
                try:
                    wavs.append((u, torch.from_numpy(d.load_audio(u, sample_rate))))
                except AudioError as e:
                    if not skip_bad:
                        if before_raise is not None:
                            before_raise()
                        raise
                    bad[u] = e.reason
                    log.warning("skipping %s", e)
                    if on_skip is not None:
                        on_skip(u, e.reason)
            bar.update(len(batch))
            if wavs:
                lengths = torch.tensor([w.shape[0] for _, w in wavs])
                # one utterance (every long one): a view, not a copy of what may be hours of audio
                padded = (
                    wavs[0][1][None]
                    if len(wavs) == 1
                    else torch.nn.utils.rnn.pad_sequence([w for _, w in wavs], batch_first=True)
                )
                yield [u for u, _ in wavs], padded, lengths
    finally:
        bar.close()
