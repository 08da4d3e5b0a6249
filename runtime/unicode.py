"""The Unicode version of this Python's tables, which normalise and lowercase text and say what
whitespace is: recorded in every exported file (``rnnkit.unicode``) and compared when one loads."""

from __future__ import annotations

import unicodedata
import warnings

from .errors import RnnkitWarning

__all__ = ["UNICODE_VERSION", "warn_unicode_version"]

UNICODE_VERSION = unicodedata.unidata_version
_warned_versions: set[str] = set()


def warn_unicode_version(recorded: str | None) -> None:
    """Warn (once per version in a process) when a model's text was normalised by other tables."""
    if recorded is None or recorded == UNICODE_VERSION or recorded in _warned_versions:
        return
    _warned_versions.add(recorded)
    warnings.warn(
        f"this model's text was normalised with Unicode {recorded} tables and this Python has Unicode "
        f"{UNICODE_VERSION}; the few characters whose mapping changed between them may tokenize differently: "
        f"run it on a Python with Unicode {recorded} for identical results",
        RnnkitWarning,
        stacklevel=3,
    )
