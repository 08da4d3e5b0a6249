"""Catalogue cases: files."""

from __future__ import annotations

from catalogue import Case

CASES: dict[str, Case] = {}
