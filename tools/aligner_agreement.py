"""How close the PocketSphinx aligner comes to the truth on synthetic speech, whose espeak-ng phone timings are
known: frame agreement and boundary error per data dir (docs/real-speech.md quotes its output).

    python tools/aligner_agreement.py --data exp/data/dev exp/data/test     # synthetic data dirs with alignments.ctm
    python tools/aligner_agreement.py --synth tiny                         # synthesizes the tiny corpus first
"""

import argparse
import json
import tempfile
from pathlib import Path

from speechssl.pipelines.align import align_data_dir, alignment_agreement


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", nargs="*", default=[], help="synthetic data dirs (with their true alignments.ctm)")
    p.add_argument("--synth", choices=["tiny", "mini"], help="synthesize this preset and use its dev and test")
    args = p.parse_args()
    work = Path(tempfile.mkdtemp(prefix="aligner_"))
    dirs = [Path(d) for d in args.data]
    if args.synth:
        from speechssl.corpus.synth import synthesize_corpus
        from speechssl.data.librispeech import prepare_librispeech

        synthesize_corpus(work / args.synth, args.synth, seed=0, num_workers=2, progress=False)
        for split in ("dev", "test"):
            prepare_librispeech(work / args.synth, split, work / "data" / split)
            dirs.append(work / "data" / split)
    for d in dirs:
        out = work / "aligned" / d.name
        counts = align_data_dir(d, out)
        result = alignment_agreement((d / "alignments.ctm").read_text(), (out / "alignments.ctm").read_text())
        print(
            json.dumps(
                {"data": str(d), **counts, **{k: round(v, 4) if isinstance(v, float) else v for k, v in result.items()}}
            )
        )


if __name__ == "__main__":
    main()
