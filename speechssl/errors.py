"""The one exception base of speechssl.

Everything a user can cause (a bad file, a bad config value, a missing input) raises a subclass
of :class:`SpeechSSLError`; the CLI prints such an error as one line and exits with status 2.
Any other exception is a programming error and keeps its traceback.

Subclasses also derive from the builtin a caller would naturally catch (``ValueError``,
``FileNotFoundError``), so ``except ValueError`` around library calls keeps working.
"""

from __future__ import annotations


class SpeechSSLError(Exception):
    """Base of every error a user's input can cause; the message names the file, key or utterance."""

    exit_code = 2


class InputError(SpeechSSLError, ValueError):
    """A value, option or argument that cannot be used as given."""


class ConfigError(InputError):
    """A config that does not fit its schema; the message names the key and the source."""


class MissingInputError(SpeechSSLError, FileNotFoundError):
    """A file or folder the command needs is not there (or is not what it should be)."""


class OutputExistsError(SpeechSSLError, FileExistsError):
    """An output that exists and was made by something else; the message says what to do."""


class NotFoundError(SpeechSSLError, KeyError):
    """A name, id or checkpoint key that is not where it should be (an unknown model, an utterance
    missing from a table, weights that do not fit)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class Interrupted(SpeechSSLError):
    """A run stopped by a signal (SIGTERM from ``kill``, ``timeout`` or a scheduler; SIGUSR1 outside SLURM) after
    checkpointing: not a success, so the exit status is 128 + the signal's number, as a shell reports it."""

    def __init__(self, message: str, signum: int):
        super().__init__(message)
        self.exit_code = 128 + int(signum)


__all__ = [
    "ConfigError",
    "Interrupted",
    "InputError",
    "MissingInputError",
    "NotFoundError",
    "OutputExistsError",
    "SpeechSSLError",
]
