"""Are two training runs the same? Step counts, every logged final metric, and every exported weight.

    python tools/compare_runs.py exp/hubert_it1 exp/repro/hubert_it1

Each argument is a run's ``trainer.out_dir`` (``summary.json`` + ``final/*.safetensors``). Prints the metrics
that differ (throughput always does) and whether each weight file is bit-identical (``torch.equal``);
exits 1 when a weight differs.
"""

import argparse
import json
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("a")
    ap.add_argument("b")
    args = ap.parse_args()
    a, b = (json.loads((Path(d) / "summary.json").read_text()) for d in (args.a, args.b))
    print(f"steps {a['steps']} / {b['steps']}, precision {a.get('precision')} / {b.get('precision')}")
    differ = [k for k in sorted(a["metrics"]) if k in b["metrics"] and a["metrics"][k] != b["metrics"][k]]
    for k in differ:
        print(f"  differs: {k} {a['metrics'][k]} / {b['metrics'][k]}")
    print(f"{len(differ)} of {len(a['metrics'])} metrics differ")
    same = True
    for f in sorted((Path(args.a) / "final").glob("*.safetensors")):
        wa, wb = load_file(str(f)), load_file(str(Path(args.b) / "final" / f.name))
        equal = wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
        same &= equal
        print(f"{f.name}: {len(wa)} tensors, {'bit-identical' if equal else 'DIFFERENT'}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
