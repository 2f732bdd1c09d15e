"""Batch jobs over data dirs: Kaldi features and layer features, sharded, resumable, committed atomically."""
