"""Exceptions that mean "the user asked for something that does not exist or does not fit".

The CLI prints these as one line and exits with status 2; everything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class GanzooError(Exception):
    """Base class of every user-facing ganzoo error."""


class UnknownNameError(GanzooError, KeyError):
    """An unknown variant, loss, dataset, metric, tag or config key."""

    def __init__(self, kind: str, name: str, choices: Iterable[str], note: str = ""):
        self.kind, self.name, self.choices, self.note = kind, name, sorted(set(choices)), note
        super().__init__(self._message())

    def _message(self) -> str:
        close = difflib.get_close_matches(self.name, self.choices, n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        shown = ", ".join(self.choices[:40]) + (" ..." if len(self.choices) > 40 else "")
        note = f" ({self.note})" if self.note else ""
        return f"unknown {self.kind} {self.name!r}.{hint} Valid choices: {shown or '(none registered)'}{note}"

    def __str__(self) -> str:  # KeyError would otherwise repr() the message
        return self._message()


class ConfigError(GanzooError, ValueError):
    """A config value of the wrong type or out of range."""


class PluginError(GanzooError):
    """A plugin that fails to load or conflicts with another one."""


class CheckpointError(GanzooError):
    """A checkpoint or model file that is missing, truncated, tampered with or of the wrong kind."""


#: The help of ``--trust-unverified``, which every command that loads a model file takes.
TRUST_HELP = (
    "load a model file that carries no ganzoo digest (hand-written or from an older ganzoo), with a warning; "
    "a file that fails its digest is refused regardless"
)
