"""Formatting helpers of the recipe's report and its WavThruVec and active-speaker-detection sections
(:mod:`speechssl.report` assembles them)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Optional


def _fmt(v, digits=2) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def _params(n: Optional[int]) -> str:
    return "–" if n is None else "0" if n == 0 else f"{n / 1e6:.2f}M"


def _tts_md(res: Dict[str, Any], exp: Path, plots: Dict[str, Optional[Path]]) -> List[str]:
    if not res.get("tts"):
        return []
    t = res["tts"]
    asr = lambda r: "–" if not r else f"{r['wer']:.1f} / {r['cer']:.1f}"  # noqa: E731
    rs, vc = t["resynthesis"], t["voice_conversion"]
    md = [
        "## WavThruVec (test split)",
        "",
        "| measure | value |",
        "|---|---:|",
        f"| resynthesis MCD (dB) | {rs['mcd']:.2f} |",
        f"| resynthesis STOI | {_fmt(rs.get('stoi'), 3)} |",
        f"| ASR WER / CER on the original audio | {asr(rs.get('asr_original'))} |",
        f"| ASR WER / CER on resynthesized audio | {asr(rs.get('asr'))} |",
        f"| voice conversion: similarity to target / to source | {vc['similarity_to_target']:.3f} / "
        f"{vc['similarity_to_source']:.3f} |",
        f"| voice conversion ASR WER / CER | {asr(vc.get('asr'))} |",
    ]
    clean = t.get("clean_twin")
    if clean:  # the vocoder learnt the clean twin: the floor of clean audio, and MCD against it
        md += [
            f"| ASR WER / CER on the clean twin of the original audio | {asr(clean.get('asr_original'))} |",
            f"| resynthesis MCD (dB) / STOI against the clean twin | {clean['resynthesis_mcd']:.2f} / "
            f"{_fmt(clean.get('resynthesis_stoi'), 3)} |",
        ]
    scale = t.get("speaker_similarity_scale")
    if scale:
        md += [
            f"| similarity of real audio: same speaker / source vs target | "
            f"{_fmt(scale['same_speaker_originals'], 3)} / {_fmt(scale['source_vs_target_originals'], 3)} |"
        ]
    if t.get("tts"):
        md += [
            f"| TTS ASR WER / CER | {asr(t['tts'].get('asr'))} |",
            f"| TTS speaker similarity to the reference | {t['tts']['speaker_similarity']:.3f} |",
        ]
    j = t.get("judges") or {}
    if j.get("wer"):
        sim, w, real = j["speaker_similarity"], j["wer"], j["judge_on_real_audio"]
        md += [
            f"| independent judges: resemblyzer EER on real test / reference speakers (%) | "
            f"{real['test_speakers']['eer']:.1f} / {real['reference_speakers']['eer']:.1f} |"
        ]
        own = j.get("vocoder_embedding_on_real_audio")
        if own:
            md += [
                f"| the vocoder's own speaker embedding, EER on the same trials (%) | "
                f"{own['test_speakers']['eer']:.1f} / {own['reference_speakers']['eer']:.1f} |"
            ]
        md += [
            f"| resemblyzer: VC similarity to target / to source (closer to target: share) | "
            f"{_fmt(sim['vc_to_target'], 3)} / {_fmt(sim['vc_to_source'], 3)} ({_fmt(j['vc_closer_to_target'], 2)}) |",
            f"| resemblyzer: VC similarity to the source speaker's other sentences (closer to target: share) | "
            f"{_fmt(sim.get('vc_to_source_speaker'), 3)} "
            f"({_fmt(j.get('vc_closer_to_target_than_source_speaker'), 2)}) |",
            f"| resemblyzer: TTS similarity to its reference / to other references | "
            f"{_fmt(sim['tts_to_reference'], 3)} / {_fmt(sim['tts_to_other_references'], 3)} |",
            f"| PocketSphinx WER ({'domain LM' if j.get('asr_judge_lm', '').endswith('.arpa') else 'its own LM'}): "
            f"original (floor) / resynthesis / VC / TTS | {_fmt(w['original'], 1)} / "
            f"{_fmt(w.get('resynthesis'), 1)} / {_fmt(w.get('vc'), 1)} / {_fmt(w.get('tts'), 1)} |",
            f"| published MCD-DTW (dB): resynthesis / TTS in the own voice | "
            f"{_fmt(j['mcd_dtw'].get('resynthesis'))} / {_fmt(j['mcd_dtw'].get('tts_own_voice'))} |",
        ]
    figures = res.get("figures", {})
    md.append("")
    if figures.get("spectrograms"):
        md += [f"![spectrograms]({figures['spectrograms']})", ""]
    if t.get("curve") and figures.get("tts_curve"):
        md += [f"![resynthesis against vocoder training steps]({figures['tts_curve']})", ""]
    return md


def _asd_md(res: Dict[str, Any], exp: Path, plots: Dict[str, Optional[Path]]) -> List[str]:
    if not res.get("asd"):
        return []
    subsets = sorted({k for r in res["asd"].values() for k in r["mAP"] if k != "overall"})
    md = [
        "## Active speaker detection (synthetic set, test split, mAP %)",
        "",
        "| model | overall | " + " | ".join(subsets) + " |",
        "|---|---:|" + "---:|" * len(subsets),
    ]
    for name, r in res["asd"].items():
        md.append(
            f"| {name} | {r['mAP'].get('overall', float('nan')):.2f} | "
            + " | ".join(_fmt(r["mAP"].get(s)) for s in subsets)
            + " |"
        )
    md.append("")
    return md
