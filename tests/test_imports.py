"""The runtime must stay light: no torch, no onnx, no click at import time."""

import json


def test_runtime_import_pulls_in_nothing_heavy(fresh_python):
    r = fresh_python("""
        import sys, json
        import rnnkit.runtime
        from rnnkit.runtime import CharTokenizer, Vocabulary, ModelSpec
        heavy = [m for m in ("torch", "onnx", "onnxscript", "click", "jieba", "onnxruntime")
                 if m in sys.modules]
        print(json.dumps(heavy))
    """)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == []


def test_runtime_works_where_torch_and_onnx_cannot_be_imported(fresh_python):
    r = fresh_python("""
        from rnnkit.runtime import WordTokenizer, Vocabulary
        tok = WordTokenizer()
        v = Vocabulary.build([tok.tokenize("我爱北京天安门")])
        print(tok.decode(tok.encode("我爱北京", v), v))
    """, block=("torch", "onnx"))
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "我爱北京"
    assert r.stderr == ""  # jieba's dictionary build is quiet


def test_the_base_install_requires_no_torch_or_onnx():
    """`pip install rnnkit` (no extras) must stay the runtime only; torch and onnx come with [train]."""
    from importlib.metadata import requires

    base = [r.split(";")[0].strip() for r in requires("rnnkit") if "extra ==" not in r]
    names = {r.split(">")[0].split("=")[0].split("<")[0].strip().lower() for r in base}
    assert names == {"numpy", "onnxruntime", "jieba", "click"}
    train = [r for r in requires("rnnkit") if 'extra == "train"' in r]
    assert any(r.startswith("torch") for r in train) and any(r.startswith("onnx") for r in train)
