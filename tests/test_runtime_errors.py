"""Bad input to the runtime: every failure is a typed error with a message that says what to do."""

from __future__ import annotations

import json
import struct
import warnings

import numpy as np
import onnx
import onnxruntime
import pytest
from factory import tiny_onnx
from onnx import TensorProto, helper
from onnx_edits import rewrite_metadata

from rnnkit.runtime import (
    ConfigError,
    FormatVersionError,
    InputError,
    MetadataError,
    ModelFileError,
    ModelNotFoundError,
    ProviderError,
    RnnkitError,
    RnnkitWarning,
    StateError,
    TaskError,
    load_model,
)
from rnnkit.runtime.vocab import vocab_checksum

HAS_CUDA = "CUDAExecutionProvider" in onnxruntime.get_available_providers()


@pytest.fixture(scope="module")
def paths(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    return {
        "lm": tiny_onnx(root / "lm", task="lm", cell="lstm", layers=2),
        "clf": tiny_onnx(root / "clf", task="classify", cell="gru", level="word"),
        "tag": tiny_onnx(root / "tag", task="tag", cell="rnn"),
        "lm2": tiny_onnx(root / "lm2", task="lm", cell="lstm", layers=2, seed=1),
    }


@pytest.fixture(scope="module")
def lm(paths):
    return load_model(paths["lm"])


@pytest.fixture(scope="module")
def clf(paths):
    return load_model(paths["clf"])


@pytest.fixture(scope="module")
def tagger(paths):
    return load_model(paths["tag"])


# -- texts and calls -----------------------------------------------------------------------------
def test_empty_text_is_an_input_error(clf, tagger):
    with pytest.raises(InputError, match="empty"):
        clf.classify("")
    with pytest.raises(InputError, match="empty"):
        clf.classify(["很好", ""])
    with pytest.raises(InputError, match="empty"):
        tagger.tag("")


@pytest.mark.parametrize("call", [
    lambda m: m["clf"].classify(5),
    lambda m: m["clf"].classify(b"bytes"),
    lambda m: m["clf"].classify(["ok", None]),
    lambda m: m["tag"].tag(["我爱", 5]),
    lambda m: m["tag"].tag(5),
    lambda m: m["tag"].tag(b"bytes"),
    lambda m: m["lm"].generate(prompt=3),
    lambda m: m["lm"].stream().feed(b"x"),
    lambda m: m["lm"].stream().step("5"),
    lambda m: m["lm"].stream().step(5.0),
    lambda m: m["lm"].stream(snapshot="not bytes"),
])
def test_wrong_python_types_are_type_errors(lm, clf, tagger, call):
    with pytest.raises(TypeError, match=r"must be|got"):
        call({"lm": lm, "clf": clf, "tag": tagger})


def test_unknown_characters_become_unk(lm, clf, tagger):
    text = "ꙮ𓀀Ꙭ"  # characters no tiny vocabulary holds
    assert set(lm.encode(text)) == {lm.vocab.unk_id}
    assert clf.classify(text).label in clf.labels
    assert [t for t, _ in tagger.tag(text)] == list(text)
    s = lm.stream()
    s.feed(text)
    assert s.consumed == 3
    assert all(p not in ("<unk>", "\ufffd") for p in lm.generate(text, max_tokens=20, seed=0))


def test_calls_that_do_not_fit_the_task(lm, clf, tagger):
    with pytest.raises(TaskError, match=r"generate\(\) needs an lm model.*classify/stream"):
        clf.generate("x")
    with pytest.raises(TaskError, match=r"classify\(\) needs a classify model.*generate/stream"):
        lm.classify("x")
    with pytest.raises(TaskError, match=r"tag\(\) needs a tag model"):
        clf.tag("x")
    with pytest.raises(TaskError, match="prediction"):
        tagger.stream().prediction()
    with pytest.raises(TaskError, match="prediction"):
        lm.stream().prediction()


def test_token_ids_out_of_range(lm):
    s = lm.stream()
    for bad in (len(lm.vocab), -1, 10**12):
        with pytest.raises(InputError, match="outside the vocabulary"):
            s.step(bad)
        with pytest.raises(InputError, match="outside the vocabulary"):
            lm.run(np.array([[4, bad]]))
    assert s.consumed == 0
    assert s.step(np.int64(5)) is not None  # numpy integers are ids too
    with pytest.raises(InputError, match="integer array"):
        lm.run(np.array([[1.5]]))
    with pytest.raises(InputError, match="integer array"):
        lm.run(np.array([4, 5]))
    with pytest.raises(StateError, match="shape"):
        lm.run(np.array([[4, 5]]), lm.zero_state(2))
    logits, _ = lm.run(np.array([[4, 5]], np.int32))  # any integer dtype
    assert logits.shape == (1, 2, lm.n_out)


def test_bad_options(clf, lm):
    with pytest.raises(ConfigError, match="batch_size"):
        clf.classify(["x"], batch_size=0)
    with pytest.raises(ConfigError, match="max_tokens"):
        lm.generate("x", max_tokens=-5)
    with pytest.raises(ConfigError, match="top_p"):
        lm.generate("x", top_p=2)


# -- snapshots -----------------------------------------------------------------------------------
def test_snapshot_from_another_model(paths, lm):
    other = load_model(paths["lm2"])
    with pytest.raises(StateError, match="another model"):
        lm.stream(other.stream().snapshot())
    same_file = load_model(paths["lm"], threads=2)  # another load of the same file is the same model
    assert same_file.stream(lm.stream().snapshot()).consumed == 0


@pytest.mark.parametrize("damage", [
    lambda b: b[: len(b) // 2],
    lambda b: b[:-1],
    lambda b: b[:10],
    lambda b: b"",
    lambda b: b + b"\0\0\0\0",
    lambda b: bytes(np.random.default_rng(0).integers(0, 256, len(b), dtype=np.uint8)),
    lambda b: b"RNNKSNAP" + b"\xff" * 40,
    lambda b: struct.pack("<8sHI", b"RNNKSNAP", 1, 20000) + b"[" * 20000,
    lambda b: struct.pack("<8sHI", b"RNNKSNAP", 2, 2) + b"{}",
])
def test_damaged_snapshots_are_state_errors(lm, damage):
    s = lm.stream()
    s.feed("我爱北京")
    with pytest.raises(StateError, match="snapshot"):
        lm.stream(damage(s.snapshot()))


@pytest.mark.parametrize("edit", [
    {"consumed": "3"}, {"consumed": -1}, {"pending": 5}, {"logits": 7}, {"logits": "x"}, {"states": 1},
])
def test_snapshot_headers_that_do_not_fit_are_state_errors(lm, edit):
    s = lm.stream()
    s.feed("我爱")
    data = s.snapshot()
    _, _, size = struct.unpack_from("<8sHI", data)
    header = json.loads(data[14 : 14 + size])
    header.update(edit)
    raw = json.dumps(header).encode()
    with pytest.raises(StateError):
        lm.stream(struct.pack("<8sHI", b"RNNKSNAP", 1, len(raw)) + raw + data[14 + size :])


# -- model files ---------------------------------------------------------------------------------
def test_missing_file_and_folder(tmp_path):
    with pytest.raises(ModelNotFoundError, match="no model file") as e:
        load_model(tmp_path / "nope.onnx")
    assert isinstance(e.value, FileNotFoundError)
    with pytest.raises(ModelFileError, match="folder"):
        load_model(tmp_path)


def test_not_onnx_and_truncated_onnx(tmp_path, paths):
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(np.random.default_rng(1).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    text = tmp_path / "text.onnx"
    text.write_text("hello, I am not a model\n")
    half = tmp_path / "half.onnx"
    data = paths["clf"].read_bytes()
    half.write_bytes(data[: len(data) // 2])
    empty = tmp_path / "empty.onnx"
    empty.write_bytes(b"")
    for path in (junk, text, half, empty):
        with pytest.raises(ModelFileError) as e:
            load_model(path)
        assert str(path) in str(e.value) or path.name in str(e.value)
        assert "\n" not in str(e.value)


def test_valid_onnx_without_rnnkit_metadata(tmp_path, paths):
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "plain",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    plain = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(plain)
    onnx.save(plain, str(tmp_path / "plain.onnx"))
    with pytest.raises(MetadataError, match="no rnnkit metadata"):
        load_model(tmp_path / "plain.onnx")

    stripped = onnx.load(str(paths["clf"]))
    del stripped.metadata_props[:]
    onnx.save(stripped, str(tmp_path / "stripped.onnx"))
    with pytest.raises(MetadataError, match="no rnnkit metadata"):
        load_model(tmp_path / "stripped.onnx")




def test_format_versions(tmp_path, paths):
    with pytest.raises(FormatVersionError, match=r"newer.*upgrade rnnkit"):
        load_model(rewrite_metadata(paths["clf"], tmp_path / "v99.onnx", format="99"))
    with pytest.raises(FormatVersionError, match="unknown model format 0"):
        load_model(rewrite_metadata(paths["clf"], tmp_path / "v0.onnx", format="0"))
    with pytest.raises(MetadataError, match="must be an integer"):
        load_model(rewrite_metadata(paths["clf"], tmp_path / "vx.onnx", format="one"))
    with pytest.raises(MetadataError, match=r"format.*missing"):
        load_model(rewrite_metadata(paths["clf"], tmp_path / "vnone.onnx", format=None))


def test_inconsistent_metadata(tmp_path, paths):
    clf = load_model(paths["clf"])
    labels3 = json.dumps(["neg", "mid", "pos"])
    with pytest.raises(MetadataError, match="logits' last axis is 2 but the metadata's label count is 3") as e:
        load_model(rewrite_metadata(paths["clf"], tmp_path / "labels.onnx", labels=labels3))
    assert e.value.key == "rnnkit.labels"
    with pytest.raises(MetadataError, match="missing"):
        load_model(rewrite_metadata(paths["clf"], tmp_path / "novocab.onnx", vocab=None))
    with pytest.raises(MetadataError, match="checksum"):
        tokens = clf.vocab.tokens
        edited = json.dumps([*tokens[:4], *tokens[5:]])
        load_model(rewrite_metadata(paths["clf"], tmp_path / "edited.onnx", vocab=edited))
    with pytest.raises(MetadataError, match="do not fit its metadata's cell 'lstm'"):
        load_model(rewrite_metadata(paths["clf"], tmp_path / "cell.onnx", cell="lstm"))
    with pytest.raises(MetadataError, match="hidden"):
        load_model(rewrite_metadata(paths["clf"], tmp_path / "hidden.onnx", hidden="13"))
    with pytest.raises(MetadataError, match="task"):
        load_model(rewrite_metadata(paths["clf"], tmp_path / "task.onnx", task="tag"))

    tokens = [*clf.vocab.tokens, "多", "余"]  # more tokens than the embedding has rows, checksum kept right
    grown = rewrite_metadata(paths["clf"], tmp_path / "grown.onnx", vocab=json.dumps(tokens, ensure_ascii=False),
                    vocab_sha256=vocab_checksum(tokens))
    with pytest.raises(MetadataError, match="the embedding has 35 rows but the metadata's vocabulary size is 37") as e:
        load_model(grown)
    assert e.value.key == "rnnkit.vocab"


# -- providers and threads -----------------------------------------------------------------------
@pytest.mark.skipif(HAS_CUDA, reason="this onnxruntime has CUDA: the no-CUDA errors cannot happen")
def test_cuda_without_cuda(paths):
    for providers in ("cuda", "CUDA", ["CUDAExecutionProvider", "CPUExecutionProvider"], "CUDAExecutionProvider"):
        with pytest.raises(ProviderError, match=r"CUDAExecutionProvider.*rnnkit\[gpu\].*fallback=True"):
            load_model(paths["clf"], providers=providers)
    with pytest.warns(RnnkitWarning, match="running on CPU") as record:
        model = load_model(paths["clf"], providers="cuda", fallback=True)
    assert len(record) == 1
    assert model.providers == ["CPUExecutionProvider"]
    assert model.classify("很好").label in model.labels
    with pytest.warns(RnnkitWarning) as record:
        model = load_model(paths["clf"], providers=["CUDAExecutionProvider"], fallback=True)
    assert len(record) == 1 and model.providers == ["CPUExecutionProvider"]


def test_provider_names(paths):
    with pytest.raises(ConfigError, match="'auto', 'cpu', 'cuda'"):
        load_model(paths["clf"], providers="tpu")
    with pytest.raises(ProviderError, match=r"TPUExecutionProvider.*has only"):
        load_model(paths["clf"], providers=["TPUExecutionProvider"])
    with pytest.raises(ConfigError, match="empty"):
        load_model(paths["clf"], providers=[])
    with pytest.raises(TypeError, match="providers"):
        load_model(paths["clf"], providers=3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load_model(paths["clf"], providers="cpu").providers == ["CPUExecutionProvider"]
        assert load_model(paths["clf"], providers=["CPUExecutionProvider"]).providers == ["CPUExecutionProvider"]
        assert load_model(paths["clf"], providers="auto").providers[-1] == "CPUExecutionProvider"


@pytest.mark.parametrize("threads", [0, -1, "2", 1.5, True])
def test_bad_threads(paths, threads):
    with pytest.raises(ConfigError, match="threads"):
        load_model(paths["clf"], threads=threads)


def test_good_threads(paths):
    for threads in (None, 2):
        assert load_model(paths["clf"], threads=threads).classify("好").label in ("neg", "pos")


def test_every_error_is_an_rnnkit_error(tmp_path):
    with pytest.raises(RnnkitError):
        load_model(tmp_path / "missing.onnx")
