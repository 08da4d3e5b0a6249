"""A small JSON Schema validator for the subset the model format uses.

The schemas of the metadata values are data (see ``contract.py`` and docs/FORMAT.md), so a
reader in another language can check a file with any JSON Schema library. This validator
implements the keywords those schemas use and nothing more; the runtime stays free of a
``jsonschema`` dependency.
"""

from __future__ import annotations

import functools
import re
from typing import Any

__all__ = ["schema_errors"]

_TYPES = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
}


@functools.lru_cache(maxsize=64)
def _pattern(pattern: str) -> re.Pattern[str]:
    """``pattern`` as JSON Schema reads it (ECMA-262): ``$`` is the end of the text, where Python's
    ``$`` also matches before a final newline (``"2\\n"`` would pass ``^[0-9]$``)."""
    return re.compile(re.sub(r"(?<!\\)\$", r"\\Z", pattern))


def schema_errors(value: Any, schema: dict[str, Any], path: str = "$") -> list[str]:
    """Every way ``value`` breaks ``schema``, as ``"$.a[3]: message"`` strings (empty if valid)."""
    errors: list[str] = []
    types = schema.get("type")
    if types is not None:
        names = [types] if isinstance(types, str) else types
        if not any(_TYPES[t](value) for t in names):
            return [f"{path}: expected {' or '.join(names)}, got {_describe(value)}"]
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{path}: {value!r} is not one of {schema['enum']}")
    if isinstance(value, str):
        if len(value) < schema.get("minLength", 0):
            errors.append(f"{path}: shorter than {schema['minLength']} characters")
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            errors.append(f"{path}: longer than {schema['maxLength']} characters")
        if "pattern" in schema and not _pattern(schema["pattern"]).search(value):
            errors.append(f"{path}: {value[:40]!r} does not match {schema['pattern']}")
    if _TYPES["number"](value):
        if "minimum" in schema and value < schema["minimum"]:
            errors.append(f"{path}: {value} is below the minimum {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            errors.append(f"{path}: {value} is above the maximum {schema['maximum']}")
    if isinstance(value, list):
        if len(value) < schema.get("minItems", 0):
            errors.append(f"{path}: fewer than {schema['minItems']} items")
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            return [*errors, f"{path}: more than {schema['maxItems']} items"]  # not worth walking the items
        if "items" in schema and not _plain_strings(value, schema["items"]):
            for i, item in enumerate(value):
                errors += schema_errors(item, schema["items"], f"{path}[{i}]")
                if len(errors) > 20:  # enough to say what is wrong
                    return errors
        if schema.get("uniqueItems") and _has_duplicates(value):
            errors.append(f"{path}: items are not unique")
    if isinstance(value, dict):
        props = schema.get("properties", {})
        for key in schema.get("required", []):
            if key not in value:
                errors.append(f"{path}: missing required key {key!r}")
        extra = schema.get("additionalProperties", True)
        for key, item in value.items():
            if key in props:
                errors += schema_errors(item, props[key], f"{path}.{key}")
            elif extra is False:
                errors.append(f"{path}: unexpected key {key!r}")
            elif isinstance(extra, dict):
                errors += schema_errors(item, extra, f"{path}.{key}")
    return errors


def _plain_strings(items: list[Any], schema: dict[str, Any]) -> bool:
    """True when ``schema`` only bounds string lengths and every item passes: a vocabulary of
    millions checked in a few passes in C instead of one call per token."""
    if schema.get("type") != "string" or set(schema) - {"type", "minLength", "maxLength"}:
        return False
    if not items:
        return True
    if not all(type(item) is str for item in items):
        return False
    lengths = list(map(len, items))
    return min(lengths) >= schema.get("minLength", 0) and max(lengths) <= schema.get("maxLength", max(lengths))


def _describe(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text[:40]}{'…' if len(text) > 40 else ''}"


def _has_duplicates(items: list[Any]) -> bool:
    try:
        return len(set(items)) != len(items)
    except TypeError:  # unhashable items: compare pairwise by repr
        reprs = [repr(i) for i in items]
        return len(set(reprs)) != len(reprs)
