"""Catalogue cases: tokenizers."""

from __future__ import annotations

from catalogue import Case, Ctx  # noqa: F401

CASES: dict[str, Case] = {
}
