"""Pretraining objectives on top of the upstream contract."""
