"""Regex key renaming with a record of what matched nothing."""

import re
from typing import Dict, Iterable, List, Tuple

import torch

from ..errors import NotFoundError

Rule = Tuple[str, str]  # (regex matched against the whole key, replacement with \1 groups)
Pair = Tuple[str, str]  # (our key template, theirs): literal dots, "{i}" for a layer index, "(a|b)" groups


def rules_from_pairs(pairs: Iterable[Pair], export: bool = False) -> List[Rule]:
    """Regex rules from key templates written once for both directions: theirs -> ours (import), or with
    ``export`` ours -> theirs. Both sides of a pair hold the same groups (``{i}`` and ``(a|b)``) in the same
    order, so one side's groups become the other side's ``\\1, \\2, ...``."""

    def pattern(template: str) -> str:
        return template.replace(".", r"\.").replace("{i}", r"(\d+)")

    def replacement(template: str) -> str:
        count = iter(range(1, 100))
        return re.sub(r"\{i\}|\([^()]*\)", lambda m: f"\\{next(count)}", template)

    return [
        (pattern(theirs), replacement(ours)) if not export else (pattern(ours), replacement(theirs))
        for ours, theirs in pairs
    ]


def rename_keys(state: Dict[str, torch.Tensor], rules: Iterable[Rule]) -> Tuple[Dict[str, torch.Tensor], List[str]]:
    """Apply the first matching rule to each key; returns ``(renamed, unmatched keys)``."""
    compiled = [(re.compile(pattern + r"$"), repl) for pattern, repl in rules]
    out, unmatched = {}, []
    for key, value in state.items():
        for pattern, repl in compiled:
            if pattern.match(key):
                new = pattern.sub(repl, key)
                if new in out:
                    raise NotFoundError(f"two checkpoint keys map to {new!r} (second: {key!r})")
                out[new] = value
                break
        else:
            unmatched.append(key)
    return out, unmatched


def split_keys(state: Dict[str, torch.Tensor], patterns: Iterable[str]):
    """``(kept, taken)``: ``taken`` holds the keys matching any of ``patterns`` (regex, whole key)."""
    compiled = [re.compile(p + r"$") for p in patterns]
    kept, taken = {}, {}
    for key, value in state.items():
        (taken if any(p.match(key) for p in compiled) else kept)[key] = value
    return kept, taken


# Layer-level names shared by the Hugging Face and fairseq Transformer layouts (after their prefixes)
L = r"encoder\.layers\.(\d+)\."
