"""``speechssl demo``: the synthetic corpus and its validated Kaldi data dirs, summarised per split."""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List

from ..data.librispeech import prepare_librispeech
from ..errors import InputError
from .synth import synthesize_corpus

DEMO_SPLITS = ("train", "dev", "test", "test-unseen-speakers")


def prepare_demo_data(workdir, preset: str = "mini", seed: int = 0) -> Dict:
    """Synthesize ``preset`` into ``workdir/corpus`` and write ``workdir/data/<split>``.

    Returns ``{"corpus": synthesis summary, "splits": [{split, utts, speakers, minutes, commands,
    keywords}]}``; a split that fails validation raises naming its first problem.
    """
    work = Path(workdir)
    summary = synthesize_corpus(work / "corpus", preset, seed)
    rows: List[Dict] = []
    for split in DEMO_SPLITS:
        d = prepare_librispeech(work / "corpus", split, work / "data" / split.replace("-", "_"))
        problems = [p for p in d.validate() if p.severity == "error"]
        if problems:
            raise InputError(f"data dir {split} failed validation: {problems[0]}")
        kinds = d.extra.get("utt2kind", {})
        rows.append(
            {
                "split": split,
                "utts": len(d),
                "speakers": len({d.extra["utt2reader"][u] for u in d.utt_ids}),
                "minutes": sum(d.utt2dur.values()) / 60,
                "commands": sum(k == "command" for k in kinds.values()),
                "keywords": sum(k == "keyword" for k in kinds.values()),
            }
        )
    return {"corpus": summary, "splits": rows, "data": str(work / "data")}
