"""Goldens section "load": bad model files and what the Python runtime says of each.

``write(out_dir, models)`` (called by js/tools/goldens.py) makes ``OUT/load/*.onnx`` from the
good models — truncated and foreign bytes, broken protobuf, edited metadata (wrong JSON, missing
keys, a newer format, sizes too large, bad specials, lone surrogates, JSON nested too deep),
edited graphs (unknown operators, control flow, renamed tensors, wrong dims, wrong activations,
constants that fold large) — runs ``load_model`` on each and returns::

    {"bad": [{"file", "what", "error" (Python's class name, or None where it loads), "message"}],
     "good": {name: {"file", "spec": {...}, "metadata": {...}, "graph": {...}, "budget": {...}, "identity"}}}

Messages name the file ``<model>`` (the JS test opens the bytes with ``name: "<model>"``).
"""

from __future__ import annotations

import hashlib
import json
import random
import shutil
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
NAME = "<model>"


def _tests_path() -> None:
    tests = str(ROOT / "tests")
    if tests not in sys.path:
        sys.path.insert(0, tests)


# -- protobuf by hand ---------------------------------------------------------------------------
def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def field(number: int, payload: bytes) -> bytes:
    """A length-delimited field."""
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def entry(key: bytes, value: bytes) -> bytes:
    """A ModelProto.metadata_props entry (field 14) of raw key and value bytes."""
    return field(14, field(1, key) + field(2, value))


# -- the Python runtime's answers -----------------------------------------------------------------
def _outcome(path: Path) -> tuple[str | None, str]:
    from rnnkit.runtime import load_model

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            load_model(path)
        except Exception as e:  # every class is recorded, rnnkit's or not
            return type(e).__name__, str(e).replace(str(path), NAME)
    return None, ""


def _spec(path: Path) -> dict[str, Any]:
    from rnnkit.runtime import load_model
    from rnnkit.runtime.onnxfile import read_onnx

    data = path.read_bytes()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = load_model(path)
    spec = model.metadata
    graph = read_onnx(data)
    tokens = json.dumps(spec.vocab.tokens, ensure_ascii=False, separators=(",", ":"))
    return {
        "spec": {
            "format": spec.format, "task": spec.task, "cell": spec.cell, "layers": spec.layers,
            "hidden": spec.hidden, "embed": spec.embed, "tokenizer": spec.tokenizer,
            "vocabLength": len(spec.vocab), "vocabSha256": hashlib.sha256(tokens.encode("utf-8")).hexdigest(),
            "vocabHead": spec.vocab.tokens[:20], "labels": list(spec.labels), "tagScheme": spec.tag_scheme,
            "lookahead": spec.lookahead, "quantization": spec.quantization, "activation": spec.activation,
            "bos": spec.bos, "eos": spec.eos, "unicode": getattr(spec, "unicode", None), "nOut": spec.n_out,
            "nState": spec.n_state, "stateNames": [list(p) for p in spec.state_names],
            "inputNames": list(spec.input_names), "outputNames": list(spec.output_names),
        },
        "metadata": graph.metadata,
        "graph": {
            "irVersion": graph.ir_version, "opsets": graph.opsets,
            "nodes": [[n.op_type, n.domain, list(n.inputs), list(n.outputs), sorted(n.attributes)]
                      for n in graph.nodes],
            "initializers": [[t.name, list(t.dims), t.data_type, t.data_bytes] for t in graph.initializers],
            "inputs": [_value_info(v) for v in graph.inputs], "outputs": [_value_info(v) for v in graph.outputs],
        },
        "budget": {"rowBytes": model.budget.row_bytes, "stateBytes": model.budget.state_bytes,
                   "weightBytes": model.budget.weight_bytes},
        "identity": model.identity,
    }


def _value_info(v) -> list:
    shape = None if v.shape is None else [d.value if d.value is not None else d.param for d in v.shape]
    return [v.name, v.elem_type, shape]


# -- the bad files ------------------------------------------------------------------------------
class Maker:
    """Writes bad files into ``folder`` and records what Python says of each."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.cases: list[dict[str, Any]] = []
        self.skipped: list[str] = []

    def add(self, name: str, what: str, make: Callable[[Path], None]) -> None:
        path = self.folder / f"{name}.onnx"
        try:
            make(path)
        except (StopIteration, KeyError, IndexError, ValueError, AttributeError) as e:  # edit does not apply
            self.skipped.append(f"{name}: {type(e).__name__} {e}")
            path.unlink(missing_ok=True)
            return
        error, message = _outcome(path)
        self.cases.append({"file": f"load/{path.name}", "what": what, "error": error, "message": message})

    def data(self, name: str, what: str, data: bytes) -> None:
        self.add(name, what, lambda p: p.write_bytes(data))

    def graph(self, name: str, what: str, base: Path, edit: Callable) -> None:
        import onnx

        def make(path: Path) -> None:
            model = onnx.load(str(base))
            edit(model)
            path.write_bytes(model.SerializeToString())
        self.add(name, what, make)

    def meta(self, name: str, what: str, base: Path, **changes: str | None) -> None:
        from onnx_edits import rewrite_metadata

        self.add(name, what, lambda p: rewrite_metadata(base, p, **changes))

    def props(self, name: str, what: str, base: Path, edit: Callable[[dict[str, str]], None]) -> None:
        """A copy of ``base`` whose whole metadata dict goes through ``edit``."""
        import onnx

        def make(path: Path) -> None:
            model = onnx.load(str(base))
            props = {p.key: p.value for p in model.metadata_props}
            edit(props)
            del model.metadata_props[:]
            for key, value in props.items():
                e = model.metadata_props.add()
                e.key, e.value = key, value
            path.write_bytes(model.SerializeToString())
        self.add(name, what, make)


def _pick(models: dict[str, dict[str, Any]], **want: str) -> Path | None:
    """The first model whose metadata has every ``want`` (task, cell, quantization mode)."""
    from rnnkit.runtime.onnxfile import read_onnx

    for info in models.values():
        meta = read_onnx(Path(info["path"]).read_bytes()).metadata
        mode = json.loads(meta.get("rnnkit.quantization", "{}")).get("mode", "none")
        have = {"task": meta.get("rnnkit.task"), "cell": meta.get("rnnkit.cell"), "mode": mode,
                "activation": meta.get("rnnkit.activation", "tanh")}
        if all(have.get(k) == v for k, v in want.items()):
            return Path(info["path"])
    return None


def _bytes_cases(m: Maker, base: Path) -> None:
    data = base.read_bytes()
    m.data("empty", "an empty file", b"")
    m.data("text", "a text file", b"this is not an ONNX model, just text\n" * 4)
    m.data("png", "a PNG header", b"\x89PNG\r\n\x1a\n" + bytes(range(64)))
    m.data("random", "random bytes", random.Random(16).randbytes(4096))
    m.data("truncated-half", "the first half of a model", data[: len(data) // 2])
    m.data("truncated-10", "the first 10 bytes of a model", data[:10])
    m.data("truncated-1", "a model less its last byte", data[:-1])
    m.data("wire-type-3", "a group field (wire type 3) before the model", bytes([0x0B, 0x0C]) + data)
    m.data("wire-type-7", "wire type 7", bytes([0x0F]) + data)
    m.data("field-zero", "field number 0", b"\x00\x00" + data)
    m.data("varint-11", "a varint of 11 bytes", b"\x08" + b"\xff" * 10 + b"\x01" + data)
    m.data("varint-10", "a 10-byte varint (ir_version 2^63 + …): allowed", data + b"\x08" + b"\xff" * 9 + b"\x01")
    m.data("varint-truncated", "a varint cut by the end of the file", data + b"\x08\xff")
    m.data("many-fields", "a model then 1,000,001 empty unknown fields", data + b"\x98\x06\x00" * 1_000_001)
    m.data("key-not-utf8", "a metadata key that is not UTF-8", data + entry(b"\xff\xfe", b"x"))
    m.data("key-surrogate", "a metadata key that is UTF-8-encoded surrogate", data + entry(b"\xed\xa0\x80", b"x"))
    m.data("key-too-long", "a metadata key of 5000 bytes", data + entry(b"k" * 5000, b"x"))
    m.data("value-overlong-utf8", "a metadata value with an overlong UTF-8 sequence",
           data + entry(b"rnnkit.task", b"\xc0\xafm"))
    m.data("last-key-wins", "rnnkit.task given twice: the last (classify) wins",
           data + entry(b"rnnkit.task", b"classify"))
    m.data("bom-task", "a task value that starts with a byte-order mark",
           data + entry(b"rnnkit.task", b"\xef\xbb\xbflm"))
    m.data("fixed64-unknown", "an unknown fixed64 field (skipped)", data + b"\xf9\x06" + bytes(8))
    m.data("fixed32-truncated", "a fixed32 field cut by the end of the file", data + b"\xfd\x06\x00")
    m.data("length-past-end", "a field whose length runs past the end", data + b"\x9a\x06\xff\x01")
    graph_field = _first_field(data, 7)
    if graph_field is not None:
        m.data("two-graphs", "the graph field twice", data + graph_field)


def _first_field(data: bytes, number: int) -> bytes | None:
    """The bytes of the first length-delimited field ``number`` of ``data`` (key included)."""
    pos = 0
    while pos < len(data):
        start = pos
        key, pos = _read_varint(data, pos)
        wire = key & 7
        if wire == 0:
            _, pos = _read_varint(data, pos)
        elif wire == 2:
            size, pos = _read_varint(data, pos)
            pos += size
            if key >> 3 == number:
                return data[start:pos]
        elif wire == 5:
            pos += 4
        elif wire == 1:
            pos += 8
        else:
            return None
    return None


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7


def _metadata_cases(m: Maker, lm: Path, clf: Path | None, tag: Path | None) -> None:
    from rnnkit.runtime.onnxfile import read_onnx
    from rnnkit.runtime.vocab import vocab_checksum

    meta = read_onnx(lm.read_bytes()).metadata
    tokens = json.loads(meta["rnnkit.vocab"])

    def vocab(new: list[str]) -> dict[str, str]:
        return {"vocab": json.dumps(new, ensure_ascii=False), "vocab_sha256": vocab_checksum(new)}

    m.props("no-metadata", "no rnnkit metadata at all", lm, lambda p: p.clear())
    m.props("foreign-metadata", "only another tool's metadata", lm, lambda p: (p.clear(), p.update(author="me")))
    m.meta("format-missing", "rnnkit.format missing", lm, format=None)
    m.meta("format-newer", "a newer format", lm, format="4")
    m.meta("format-huge", "format 999999", lm, format="999999")
    m.meta("format-zero", "format 0", lm, format="0")
    m.meta("format-word", "format 'one'", lm, format="one")
    m.meta("format-superscript", "format '²' (a digit to str.isdigit)", lm, format="²")
    m.meta("format-newline", "format '1\\n'", lm, format="1\n")
    for key in ("task", "cell", "vocab", "vocab_sha256", "specials", "labels", "tokenizer", "quantization",
                "provenance", "metrics", "lookahead", "hidden"):
        m.meta(f"missing-{key}", f"rnnkit.{key} missing", lm, **{key: None})
    m.meta("task-unknown", "task 'translate'", lm, task="translate")
    m.meta("cell-unknown", "cell 'transformer'", lm, cell="transformer")
    m.meta("layers-zero", "layers '0'", lm, layers="0")
    m.meta("layers-newline", "layers '1\\n' (a pattern's $ is the end of the text)", lm, layers="1\n")
    m.meta("layers-plus", "layers '+1'", lm, layers="+1")
    m.meta("hidden-huge", "hidden 65537 (more than MAX_DIM)", lm, hidden="65537")
    m.meta("hidden-square", "hidden 40000: hidden × hidden too large", lm, hidden="40000")
    m.meta("state-large", "layers × hidden too large", lm, layers="64", hidden="65536")
    m.meta("embed-wrong", "embed differs from the graph's", lm, embed="7")
    m.meta("hidden-wrong", "hidden differs from the graph's", lm, hidden="33")
    m.meta("layers-wrong", "layers differs from the graph's", lm, layers="2")
    m.meta("vocab-not-json", "vocab '['", lm, vocab="[")
    m.meta("vocab-trailing-comma", "vocab with a trailing comma", lm, vocab='["<pad>",]')
    m.meta("vocab-object", "vocab an object", lm, vocab='{"a": 1}')
    m.meta("vocab-numbers", "vocab of numbers", lm, vocab="[1, 2, 3, 4, 5]")
    m.meta("vocab-short", "vocab of 4 tokens", lm, **vocab(["<pad>", "<unk>", "<bos>", "<eos>"]))
    m.meta("vocab-no-specials", "vocab without its specials first", lm, **vocab(["a", "b", "c", "d", "e", *tokens[4:]]))
    m.meta("vocab-duplicate", "vocab with a token twice", lm, **vocab([*tokens, tokens[5]]))
    m.meta("vocab-reserved", "vocab holding <unk> again", lm, **vocab([*tokens, "<unk>"]))
    m.meta("vocab-empty-token", "vocab with an empty token", lm, **vocab([*tokens, ""]))
    m.meta("vocab-long-token", "vocab with a 513-character token", lm, **vocab([*tokens, "长" * 513]))
    m.meta("vocab-astral-token", "vocab with a 512-code-point token of emoji (1024 UTF-16 units): allowed",
           lm, **vocab([*tokens, "😀" * 512]))
    m.meta("vocab-huge", "a vocabulary of 2,000,001 tokens", lm,
           vocab=json.dumps(["<pad>", "<unk>", "<bos>", "<eos>", *("a" for _ in range(2_000_001 - 4))]))
    m.meta("vocab-checksum", "vocab_sha256 of another vocabulary", lm, vocab_sha256="0" * 64)
    m.meta("vocab-checksum-upper", "vocab_sha256 in upper case", lm, vocab_sha256=meta["rnnkit.vocab_sha256"].upper())
    m.meta("vocab-surrogate", "vocab with a lone surrogate escape", lm,
           vocab=json.dumps([*tokens[:-1], "\udc80"]), vocab_sha256="0" * 64)
    m.meta("vocab-surrogate-pair", "vocab whose escapes spell a surrogate pair (one emoji): a checksum mismatch",
           lm, vocab=json.dumps([*tokens[:-1], "😀"]), vocab_sha256="0" * 64)
    m.meta("vocab-split-pair", "two tokens holding the two halves of a pair", lm,
           vocab=json.dumps([*tokens[:-1], "a\ud83d", "\ude00b"]), vocab_sha256="0" * 64)
    m.meta("specials-wrong-id", "specials eos 4", lm, specials='{"pad": 0, "unk": 1, "bos": 2, "eos": 4}')
    m.meta("specials-float", "specials pad 0.0 (a float, not an int)", lm,
           specials='{"pad": 0.0, "unk": 1, "bos": 2, "eos": 3}')
    m.meta("specials-bool", "specials unk true", lm, specials='{"pad": 0, "unk": true, "bos": 2, "eos": 3}')
    m.meta("specials-extra", "specials with a fifth name", lm,
           specials='{"pad": 0, "unk": 1, "bos": 2, "eos": 3, "sep": 4}')
    m.meta("specials-missing", "specials without eos", lm, specials='{"pad": 0, "unk": 1, "bos": 2}')
    m.meta("specials-duplicate-key", "specials with pad twice (the last, 0, wins)", lm,
           specials='{"pad": 9, "unk": 1, "bos": 2, "eos": 3, "pad": 0}')
    m.meta("specials-list", "specials a list", lm, specials="[0, 1, 2, 3]")
    m.meta("tokenizer-kind", "tokenizer kind 'bpe'", lm,
           tokenizer='{"kind": "bpe", "normalize": "NFKC", "lowercase": false, "keep_whitespace": true}')
    m.meta("tokenizer-extra", "tokenizer with an unknown key", lm,
           tokenizer='{"kind": "char", "normalize": "NFKC", "lowercase": false, "keep_whitespace": true, "x": 1}')
    m.meta("tokenizer-char-hmm", "a char tokenizer with hmm", lm,
           tokenizer='{"kind": "char", "normalize": "NFKC", "lowercase": false, "keep_whitespace": true, "hmm": true}')
    m.meta("tokenizer-word-no-jieba", "a word tokenizer without jieba_version", lm,
           tokenizer='{"kind": "word", "normalize": "NFKC", "lowercase": false, "keep_whitespace": true}')
    m.meta("tokenizer-whitespace-format1", "a whitespace tokenizer in a format-1 file", lm,
           tokenizer='{"kind": "word", "normalize": "NFKC", "lowercase": false, "keep_whitespace": true, '
                     '"segmenter": "whitespace"}')
    m.meta("tokenizer-normalize", "normalize 'NFD'", lm,
           tokenizer='{"kind": "char", "normalize": "NFD", "lowercase": false, "keep_whitespace": true}')
    m.meta("tokenizer-lowercase-int", "lowercase 0", lm,
           tokenizer='{"kind": "char", "normalize": "NFKC", "lowercase": 0, "keep_whitespace": true}')
    m.meta("tokenizer-null", "tokenizer null", lm, tokenizer="null")
    m.meta("labels-for-lm", "an lm with labels", lm, labels='["a", "b"]')
    m.meta("lookahead-lm", "an lm with lookahead 1", lm, lookahead="1")
    m.meta("lookahead-17", "lookahead 17", lm, lookahead="17")
    m.meta("tag-scheme-lm", "an lm with tag scheme bmes", lm, tag_scheme="bmes")
    m.meta("activation-gru", "activation relu on a gru", lm, activation="relu")
    m.meta("activation-unknown", "activation sigmoid", lm, activation="sigmoid")
    m.meta("framing-format1", "framing without <bos> in a format-1 file", lm, framing='{"bos": false, "eos": true}')
    m.meta("framing-extra", "framing with a third key", lm, framing='{"bos": true, "eos": true, "pad": true}')
    m.meta("framing-both", "framing both true, format 3: allowed", lm, framing='{"bos": true, "eos": true}', format="3")
    m.meta("quantization-mode", "quantization mode int9", lm, quantization='{"mode": "int9"}')
    m.meta("quantization-operator-name", "quantization operators naming a shell command", lm,
           quantization='{"mode": "none", "operators": ["Cast", "rm -rf /"]}')
    m.meta("quantization-ort", "quantization min_onnxruntime '1.x'", lm,
           quantization='{"mode": "none", "min_onnxruntime": "1.x"}')
    m.meta("quantization-ort-99", "min_onnxruntime 99.0 on an fp32 file", lm,
           quantization='{"mode": "none", "min_onnxruntime": "99.0"}')
    m.meta("quantization-ops-float", "quantized_ops counts given as floats", lm,
           quantization='{"mode": "none", "quantized_ops": {"MatMul": 1.0}}')
    m.meta("provenance-missing-created", "provenance without created", lm, provenance='{"rnnkit": "0.1.0"}')
    m.meta("metrics-list", "metrics a list", lm, metrics="[1, 2]")
    m.meta("metrics-nan", "metrics holding NaN and Infinity (Python's json reads them): allowed", lm,
           metrics='{"loss": NaN, "best": -Infinity, "big": 1e400, "n": 12345678901234567890}')
    m.meta("metrics-lowercase-nan", "metrics holding nan", lm, metrics='{"loss": nan}')
    m.meta("metrics-deep", "metrics nested 40 levels", lm, metrics='{"a": ' * 40 + "1" + "}" * 40)
    m.meta("metrics-deep-32", "metrics nested 32 levels: allowed", lm, metrics='{"a": ' * 32 + "1" + "}" * 32)
    m.meta("metrics-deep-lists", "metrics with lists nested 33 levels", lm,
           metrics='{"a": ' + "[" * 32 + "]" * 32 + "}")
    m.meta("metrics-control", "metrics with a raw control character in a string", lm, metrics='{"a": "x\ty"}')
    m.meta("metrics-escape", "metrics with a bad escape", lm, metrics='{"a": "\\q"}')
    m.meta("metrics-u-escape", "metrics with a short \\u escape", lm, metrics='{"a": "\\u12"}')
    m.meta("metrics-extra-data", "metrics followed by more JSON", lm, metrics='{} {}')
    m.meta("metrics-unterminated", "metrics with an unterminated string", lm, metrics='{"a": "b')
    m.meta("metrics-single-quotes", "metrics with single quotes", lm, metrics="{'a': 1}")
    m.meta("metrics-lone-surrogate", "metrics with a lone surrogate escape: allowed", lm, metrics='{"a": "\\ud800"}')
    m.meta("metrics-line-col", "bad JSON on the third line, after an emoji", lm, metrics='{\n"😀": 1,\n "b" 2}')
    m.meta("unicode-short", "unicode '14.0'", lm, unicode="14.0")
    m.meta("unicode-newline", "unicode '14.0.0\\n'", lm, unicode="14.0.0\n")
    m.meta("unicode-other", "unicode 99.0.0: loads (with a warning)", lm, unicode="99.0.0")
    m.meta("unicode-number", "unicode a JSON number", lm, unicode="14")
    if clf is not None:
        cmeta = read_onnx(clf.read_bytes()).metadata
        m.meta("labels-one", "a classifier with one label", clf, labels='["pos"]')
        m.meta("labels-duplicate", "labels twice the same", clf, labels='["pos", "pos"]')
        m.meta("labels-empty-string", "a label ''", clf, labels='["", "pos"]')
        m.meta("labels-surrogate", "a label with a lone surrogate", clf, labels=json.dumps(["neg", "p\ud800s"]))
        m.meta("labels-wrong-count", "three labels for a two-way head", clf, labels='["a", "b", "c"]')
        m.meta("framing-classify", "a classifier with framing", clf, framing='{"bos": true, "eos": true}',
               format="3")
        m.meta("tag-scheme-classify", "a classifier with tag scheme tags", clf, tag_scheme="tags")
        m.meta("tokenizer-whitespace-jieba-keys", "a whitespace tokenizer with hmm", clf, format="2",
               tokenizer=json.dumps({**json.loads(cmeta["rnnkit.tokenizer"]), "segmenter": "whitespace"}))
    if tag is not None:
        m.meta("bmes-labels", "a bmes tagger with labels A, B, C, D", tag, labels='["A", "B", "C", "D"]')
        m.meta("tag-scheme-none", "a tagger with tag scheme none", tag, tag_scheme="none")


def _graph_cases(m: Maker, lm: Path, lstm: Path | None, relu: Path | None, int8: Path | None) -> None:
    _tests_path()
    import cases_graph as g
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    def rename_input(old: str, new: str) -> Callable:
        def edit(model):
            for info in model.graph.input:
                if info.name == old:
                    info.name = new
            for node in model.graph.node:
                node.input[:] = [new if i == old else i for i in node.input]
        return edit

    def rename_output(old: str, new: str) -> Callable:
        def edit(model):
            for info in model.graph.output:
                if info.name == old:
                    info.name = new
            for node in model.graph.node:
                node.output[:] = [new if o == old else o for o in node.output]
        return edit

    def elem_type(name: str, kind: int) -> Callable:
        def edit(model):
            for info in [*model.graph.input, *model.graph.output]:
                if info.name == name:
                    info.type.tensor_type.elem_type = kind
        return edit

    def drop_dim(name: str) -> Callable:
        def edit(model):
            for info in [*model.graph.input, *model.graph.output]:
                if info.name == name:
                    del info.type.tensor_type.shape.dim[-1]
        return edit

    def set_attr(op: str, attr) -> Callable:
        def edit(model):
            node = next(n for n in model.graph.node if n.op_type == op)
            kept = [a for a in node.attribute if a.name != attr.name]
            del node.attribute[:]
            node.attribute.extend([*kept, attr])
        return edit

    def out_dim(name: str, axis: int, value: int) -> Callable:
        return g.set_dim(name, axis, value=value)

    m.graph("op-unknown", "an operator outside the allow-list", lm, g.add_node("Foo", ["h0"]))
    m.graph("op-loop", "a Loop of 10¹² iterations", lm, g.loop)
    m.graph("op-if", "an If node", lm, g.if_node)
    m.graph("op-constantofshape", "ConstantOfShape of 1 GiB", lm, g.one_gib())
    m.graph("op-expand", "Expand of the state", lm, g.add_node(
        "Expand", ["h0", "exp_shape"], initializers=[("exp_shape", np.array([1 << 20, 1, 1], np.int64))]))
    m.graph("op-shape", "a Shape node", lm, g.add_node("Shape", ["tokens"]))
    m.graph("op-reshape", "a Reshape node", lm, g.add_node(
        "Reshape", ["h0", "newshape"], initializers=[("newshape", np.array([-1], np.int64))]))
    m.graph("op-custom-domain", "com.microsoft FusedMatMul", lm, g.add_node("FusedMatMul", ["h0", "h0"],
                                                                          domain="com.microsoft"))
    m.graph("op-int8-in-fp32", "DynamicQuantizeLinear in an fp32 file", lm, g.add_node("DynamicQuantizeLinear",
                                                                                    ["h0"]))
    m.graph("op-ai-onnx-domain", "a node of domain ai.onnx (the default, spelled out): allowed", lm,
            lambda model: [setattr(n, "domain", "ai.onnx") for n in model.graph.node if n.op_type == "Add"][:0])
    m.graph("function", "a local function", lm, g.local_function)
    m.graph("opset-99", "opset 99", lm, g.opset(99))
    m.graph("opset-13", "opset 13", lm, g.opset(13))
    m.graph("opset-foreign", "an opset import of evil.ops", lm, g.opset(1, "evil.ops"))
    m.graph("fixed-batch", "tokens' batch axis fixed to 1", lm, g.set_dim("tokens", 0, value=1))
    m.graph("fixed-seq", "tokens' sequence axis fixed to 64", lm, g.set_dim("tokens", 1, value=64))
    m.graph("fixed-state-batch", "h0's batch axis fixed to 8", lm, g.set_dim("h0", 1, value=8))
    m.graph("dynamic-hidden", "h0's hidden axis dynamic", lm, g.set_dim("h0", 2, param="hidden"))
    m.graph("dynamic-n-out", "logits' last axis dynamic", lm, g.set_dim("logits", 2, param="n_out"))
    m.graph("wrong-n-out", "logits' last axis 100000, not the vocabulary's size", lm, out_dim("logits", 2, 100_000))
    m.graph("wrong-layers-axis", "h0's layer axis 3", lm, out_dim("h0", 0, 3))
    m.graph("wrong-hidden-axis", "hn's hidden axis 7", lm, out_dim("hn", 2, 7))
    m.graph("hidden-size", "the recurrent node's hidden_size 4096", lm, g.recurrent_attr("hidden_size", 4096))
    m.graph("renamed-input", "tokens renamed ids", lm, rename_input("tokens", "ids"))
    m.graph("renamed-state", "h0 renamed state", lm, rename_input("h0", "state"))
    m.graph("renamed-output", "logits renamed out", lm, rename_output("logits", "out"))
    m.graph("tokens-int32", "tokens of int32", lm, elem_type("tokens", TensorProto.INT32))
    m.graph("logits-double", "logits of double", lm, elem_type("logits", TensorProto.DOUBLE))
    m.graph("tokens-rank1", "tokens of rank 1", lm, drop_dim("tokens"))
    m.graph("const-matmul", "a MatMul of constants", lm, g.const_matmul)
    m.graph("short-weight", "an embedding declaring 1000× its rows", lm, g.short_weight)
    m.graph("nan-weight", "a NaN in the embedding", lm, g.nan_weight)
    m.graph("nan-float-data", "a NaN in float_data", lm, g.nan_float_data)
    m.graph("sparse-init", "a sparse initializer", lm, g.sparse_initializer)
    m.graph("sparse-constant", "a Constant with a sparse value", lm, g.sparse_constant)
    m.graph("second-head", "a second output layer", lm, g.second_head)
    m.graph("gather-state", "a Gather of the state", lm, g.gather_state)
    m.graph("out-of-order", "nodes in reverse order", lm, g.out_of_order)
    m.graph("subgraph-attr", "a graph attribute on Add", lm, g.subgraph_attr)
    m.graph("doubling", "40 Concats doubling the state", lm, g.doubling_chain)
    m.graph("external-constant", "a Constant in an external file", lm, g.external_constant)
    m.graph("double-weight", "a weight of type double", lm, lambda model: model.graph.initializer.append(
        numpy_helper.from_array(np.zeros(2, np.float64), "doubles")))
    m.graph("external-outside", "an initializer in ../weights.bin", lm, _externalize("../weights.bin"))
    m.graph("external-missing", "an initializer in weights.bin (not there)", lm, _externalize("weights.bin"))
    m.graph("direction-reverse", "a reverse recurrent node", lm,
            set_attr("GRU", helper.make_attribute("direction", "reverse")))
    m.graph("clip-attr", "a recurrent node with clip", lm, set_attr("GRU", helper.make_attribute("clip", 5.0)))
    m.graph("gru-activations", "a GRU with activations Sigmoid, Relu", lm,
            set_attr("GRU", helper.make_attribute("activations", ["Sigmoid", "Relu"])))
    m.graph("gru-activations-default", "a GRU with its default activations spelled out: allowed", lm,
            set_attr("GRU", helper.make_attribute("activations", ["Sigmoid", "Tanh"])))
    if lstm is not None:
        m.graph("squared", "an LSTM output plus its transpose: T × T", lstm, g.squared_sequence)
        m.graph("lstm-cell-as-gru", "an LSTM file whose metadata says gru", lstm, lambda model: _set_meta(
            model, "rnnkit.cell", "gru"))
    if relu is not None:
        m.graph("rnn-tanh-vs-relu", "an RNN computing Tanh where the metadata says relu", relu,
                set_attr("RNN", helper.make_attribute("activations", ["Tanh"])))
        m.graph("rnn-sigmoid", "an RNN with activation Sigmoid", relu,
                set_attr("RNN", helper.make_attribute("activations", ["Sigmoid"])))
        m.graph("rnn-two-activations", "an RNN with five activations", relu,
                set_attr("RNN", helper.make_attribute("activations", ["Relu", "Tanh", "x" * 30, "Relu", "Relu"])))
    if int8 is not None:
        m.graph("const-product", "a Mul of constants that broadcasts to 4 GiB", int8, g.const_product)
        m.meta("int8-dynamic-unmarked", "an int8-dynamic file not marked batch-variant", int8,
               quantization='{"mode": "int8-dynamic"}')
        m.meta("int8-legacy", "an int8 file without batch_invariant (read as the dynamic scheme)", int8,
               quantization='{"mode": "int8"}')
        m.meta("int8-as-none", "an int8 file whose metadata says none", int8, quantization='{"mode": "none"}')
        m.meta("int8-ort-99", "an int8 file needing onnxruntime 99.0", int8,
               quantization='{"mode": "int8", "batch_invariant": true, "min_onnxruntime": "99.0", '
                            '"operators": ["Cast", "Mul"]}')
        m.meta("int8-ort-old", "an int8 file needing onnxruntime 1.2: allowed", int8,
               quantization='{"mode": "int8", "batch_invariant": true, "min_onnxruntime": "1.2"}')


def _set_meta(model, key: str, value: str) -> None:
    for p in model.metadata_props:
        if p.key == key:
            p.value = value


def _externalize(location: str) -> Callable:
    from onnx import TensorProto, numpy_helper

    def edit(model):
        init = next(i for i in model.graph.initializer if i.name == "model.embedding.weight")
        size = numpy_helper.to_array(init).nbytes
        init.ClearField("raw_data")
        init.data_location = TensorProto.EXTERNAL
        for key, value in (("location", location), ("offset", "0"), ("length", str(size))):
            e = init.external_data.add()
            e.key, e.value = key, value
    return edit


def write(out_dir: Path, models: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Write OUT/load/*.onnx and return the section: bad files with Python's answers, good models' specs."""
    _tests_path()
    out_dir = Path(out_dir)
    folder = out_dir / "load"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    good = {}
    for name, info in models.items():
        path = Path(info["path"])
        good[name] = {"file": path.resolve().relative_to(out_dir.resolve()).as_posix(), **_spec(path)}
    maker = Maker(folder)
    lm = _pick(models, task="lm", cell="gru", mode="none")
    if lm is None:
        raise SystemExit("goldens_load: needs an fp32 GRU lm among the models")
    _bytes_cases(maker, lm)
    _metadata_cases(maker, lm, _pick(models, task="classify"), _pick(models, task="tag"))
    _graph_cases(maker, lm, _pick(models, cell="lstm", mode="none"), _pick(models, cell="rnn", activation="relu"),
                 _pick(models, mode="int8"))
    for note in maker.skipped:
        print(f"  goldens_load: skipped {note}", flush=True)
    return {"bad": maker.cases, "good": good, "name": NAME}
