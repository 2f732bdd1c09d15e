"""Numbers the whole package agrees on."""

SAMPLE_RATE = 16000
"""Hz. Every upstream, feature extractor and data loader works at this rate; audio is resampled on load."""
