"""Builders of corpora and task dirs: the synthetic mini corpus and its grammar, the SUPERB task dirs, the
active-speaker set (synthetic, or face crops from raw videos), the demo's data."""
