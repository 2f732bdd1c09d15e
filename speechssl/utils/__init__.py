"""Small helpers every layer may use: atomic writes."""

from .atomic import atomic_path, write_bytes, write_json, write_text

__all__ = ["atomic_path", "write_bytes", "write_json", "write_text"]
