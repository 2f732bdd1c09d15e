"""Numbers the whole package agrees on."""

SAMPLE_RATE = 16000
"""Hz. Every upstream, feature extractor and data loader works at this rate; audio is resampled on load."""

KALDI_SCALE = 32768.0
"""Kaldi's tools read int16 samples: features of float audio times this equal compute-*-feats' output."""

DEFAULT_LM_WEIGHT = 0.5
DEFAULT_WORD_SCORE = 1.0
"""CTC beam search with an n-gram LM: the LM weight and the per-word insertion score when none are tuned."""

SUPERB_MINI_TASKS = ("pr", "asr", "ks", "ic", "sid", "asv", "sf", "qbe", "sd")
"""The SUPERB tasks the synthetic mini corpus provides (``data superb-prep --layout mini``)."""

SUPERB_LAYOUT_TASKS = {
    "librispeech": ("pr", "asr"),
    "speech_commands": ("ks",),
    "fluent": ("ic",),
    "voxceleb1": ("sid", "asv"),
    "iemocap": ("er",),
    "snips": ("sf",),
    "librimix": ("sd",),
    "quesst14": ("qbe",),
}
"""Real corpora's layouts and the SUPERB tasks each gives."""

SUPERB_TASKS = ("pr", "ks", "ic", "sid", "asv", "er", "asr", "sf", "qbe", "sd")
"""The SUPERB tasks in the benchmark's table order (equal to ``tasks.superb.task_names()``, tested): the
command line offers them without importing the task code."""
