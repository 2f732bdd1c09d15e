"""The ``speechssl`` command: one module per command group, each parsing its options and calling the
library; ``main`` holds the top-level parser and the error boundary."""

from .main import build_parser, main

__all__ = ["build_parser", "main"]
