"""The JavaScript runtime's generated files are what their generators make from the Python side."""

import importlib.util
from pathlib import Path

JS = Path(__file__).resolve().parent.parent / "js"


def _tool(name):
    spec = importlib.util.spec_from_file_location(f"js_tools_{name}", JS / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_unicode_tables_match_python():
    """js/src/core/unicode.js holds this Python's pieces and whitespace (plan decision 5)."""
    gen = _tool("gen_unicode")
    committed = (JS / "src" / "core" / "unicode.js").read_text(encoding="utf-8")
    assert committed == gen.render(), "js/src/core/unicode.js is stale: run .venv/bin/python js/tools/gen_unicode.py"


def test_schemas_match_the_contract():
    """js/src/core/schemas.js holds runtime/contract.py's schemas, keys and caps (and the loader's allow-lists)."""
    gen = _tool("gen_schemas")
    committed = (JS / "src" / "core" / "schemas.js").read_text(encoding="utf-8")
    assert committed == gen.render(), "js/src/core/schemas.js is stale: run .venv/bin/python js/tools/gen_schemas.py"


def test_jieba_dictionary_matches_python_jieba():
    """js/src/core/jieba-freq.txt holds the installed jieba's words, frequencies, total and logarithms."""
    gen = _tool("gen_jieba_dict")
    committed = (JS / "src" / "core" / "jieba-freq.txt").read_text(encoding="utf-8")
    stale = "js/src/core/jieba-freq.txt is stale: run .venv/bin/python js/tools/gen_jieba_dict.py"
    assert committed == gen.render(), stale
