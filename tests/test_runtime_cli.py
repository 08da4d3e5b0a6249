"""The runtime CLI: generate, classify, tag, stream, inspect, bench; every failure is one ``Error:`` line."""

from __future__ import annotations

import json

import onnx
import onnxruntime
import pytest
from click.testing import CliRunner
from factory import tiny_onnx
from onnx import TensorProto, helper

from rnnkit.runtime import load_model
from rnnkit.runtime.cli import cli, main
from rnnkit.runtime.model import Model

HAS_CUDA = "CUDAExecutionProvider" in onnxruntime.get_available_providers()


@pytest.fixture(scope="module")
def paths(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    return {
        "lm": str(tiny_onnx(root / "lm", task="lm", cell="gru")),
        "clf": str(tiny_onnx(root / "clf", task="classify", cell="lstm", level="word")),
        "tag": str(tiny_onnx(root / "tag", task="tag", cell="gru")),
        "pos": str(tiny_onnx(root / "pos", task="tag", cell="rnn", labels=("N", "V", "X"))),
    }


@pytest.fixture(scope="module")
def broken(paths, tmp_path_factory):
    """Files that are not rnnkit models: junk bytes, plain ONNX, an unknown format version."""
    root = tmp_path_factory.mktemp("broken")
    (root / "junk.onnx").write_bytes(b"\x00\x01 not a model")
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "plain",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    onnx.save(helper.make_model(graph), str(root / "plain.onnx"))
    future = onnx.load(paths["clf"])
    next(p for p in future.metadata_props if p.key == "rnnkit.format").value = "99"
    onnx.save(future, str(root / "future.onnx"))
    return {"junk": root / "junk.onnx", "plain": root / "plain.onnx", "future": root / "future.onnx",
            "missing": root / "missing.onnx"}


@pytest.fixture(scope="module")
def models(paths):
    return {name: load_model(p) for name, p in paths.items()}


def run(*args, input=None):
    return CliRunner().invoke(cli, [str(a) for a in args], input=input)


def ok(*args, input=None) -> str:
    result = run(*args, input=input)
    assert result.exit_code == 0, result.output
    assert "Error" not in result.output
    return result.output


def assert_one_error_line(result, *, code=1, match=""):
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.output
    if code == 1:  # a usage error (2) adds click's usage lines; anything else is the error alone
        assert result.output.strip() == errors[0]
    assert match in errors[0]


# -- the commands --------------------------------------------------------------------------------
def test_generate(paths, models):
    out = ok("generate", paths["lm"], "--prompt", "我爱", "--seed", "1", "--max-tokens", "5")
    expected = "".join(models["lm"].generate("我爱", max_tokens=5, seed=1))
    assert out == "我爱" + expected + "\n"
    assert 1 <= len(expected) <= 5
    greedy = ok("generate", paths["lm"], "--prompt", "这", "--temperature", "0", "--max-tokens", "8")
    assert greedy == "这" + "".join(models["lm"].generate("这", max_tokens=8, temperature=0)) + "\n"
    sample = "".join(models["lm"].generate("这", max_tokens=30, seed=3))
    stop = sample[3:5]
    out = ok("generate", paths["lm"], "--prompt", "这", "--seed", "3", "--max-tokens", "30", "--stop", stop)
    assert out == "这" + sample[: sample.find(stop)] + "\n"


def test_classify_arguments_file_and_json(paths, models, tmp_path):
    texts = ["这本书很好看", "质量太差了，不推荐！", "hello world"]
    preds = models["clf"].classify(texts)
    out = ok("classify", paths["clf"], *texts).splitlines()
    assert [line.split("\t") for line in out] == [[p.label, f"{p.score:.4f}", t] for p, t in zip(preds, texts)]

    f = tmp_path / "texts.txt"
    f.write_text("\n".join(texts[:2]) + "\n\n", encoding="utf-8")  # the blank line is skipped
    out = ok("classify", paths["clf"], "--file", f, "--json", texts[2]).splitlines()
    rows = [json.loads(line) for line in out]
    assert [r["text"] for r in rows] == [texts[2], *texts[:2]]
    for row in rows:
        p = models["clf"].classify(row["text"])
        assert row["label"] == p.label and row["score"] == pytest.approx(p.score, abs=1e-6)
        assert set(row["scores"]) == {"neg", "pos"}
    out = ok("classify", paths["clf"], "--file", "-", input="很好\n太差\n").splitlines()
    assert [line.split("\t")[2] for line in out] == ["很好", "太差"]


def test_tag(paths, models):
    out = ok("tag", paths["tag"], "ＡＢ我爱北京").splitlines()
    result = models["tag"].tag("ＡＢ我爱北京")
    assert out == [" ".join(f"{t}/{g}" for t, g in result), " / ".join(result.words)]
    assert out[0].startswith("Ａ/")
    assert ok("tag", paths["pos"], "我爱").splitlines() == [" ".join(f"{t}/{g}" for t, g in models["pos"].tag("我爱"))]
    data = json.loads(ok("tag", paths["tag"], "我爱北京", "--json"))
    assert "".join(data["tokens"]) == "我爱北京" and "".join(data["words"]) == "我爱北京"
    assert len(data["tags"]) == 4


def running(model, lines, *, newline="", whole_lines=False):
    """What `rnnkit stream` should print for a classifier: the running label of each line that consumed text."""
    s, out = model.stream(), []
    for line in lines:
        logits = s.feed(line + newline)
        if whole_lines:
            logits = s.flush()
        if logits is not None:
            p = model.prediction(logits)
            out.append(f"{p.label}\t{p.score:.4f}")
    if s.pending:
        p = model.prediction(s.flush())
        out.append(f"{p.label}\t{p.score:.4f}")
    return out


def test_stream_reads_stdin_as_one_live_text(paths, models):
    clf = models["clf"]  # a word model: the open word of a line waits for the next one
    text = "这本书很好看\n质量太差了\n我爱北京天安门\n"
    out = ok("stream", paths["clf"], input=text).splitlines()
    assert out == running(clf, text.splitlines())
    assert out[-1].split("\t")[0] == clf.classify("这本书很好看质量太差了我爱北京天安门").label
    # each line a whole text with its newline, as before: one line out per line in
    old = ok("stream", paths["clf"], "--flush-every-line", "--keep-newlines", input=text).splitlines()
    assert old == running(clf, text.splitlines(), newline="\n", whole_lines=True) and len(old) == 3
    fresh = ok("stream", paths["clf"], "--reset-each-line", input="很好\n很好\n").splitlines()
    assert fresh[0] == fresh[1] == f"{clf.classify('很好').label}\t{clf.classify('很好').score:.4f}"

    lm_out = ok("stream", paths["lm"], "--top", "3", input="我爱\n").splitlines()
    assert len(lm_out) == 1 and lm_out[0].count("'") == 6


def test_stream_tags_words_as_they_settle_across_lines(paths, models):
    tagger = models["tag"]
    lines = ["我爱北", "京天安门", "", "上太阳升"]
    out = ok("stream", paths["tag"], input="\n".join(lines) + "\n").splitlines()
    ts = tagger.tag_stream()
    expected = [r for r in [*(ts.feed(line) for line in lines), ts.end()] if r]
    assert out == [" / ".join(r.words) for r in expected]
    assert " / ".join(out).split(" / ") == tagger.tag("".join(lines)).words  # words run across lines
    per_line = ok("stream", paths["tag"], "--flush-every-line", input="我爱北京\n\n天安门\n").splitlines()
    assert per_line == [" / ".join(tagger.tag(t).words) for t in ("我爱北京", "天安门")]  # blank lines: nothing
    plain = ok("stream", paths["pos"], "--keep-newlines", input="我爱\n北京\n").splitlines()
    assert " ".join(plain) == " ".join(f"{t}/{g}" for t, g in models["pos"].tag("我爱\n北京\n")).replace("\n", "\\n")
    assert "\\n/" in plain[0]  # the newline was fed, and shown escaped on its line


def test_inspect(paths, models):
    out = ok("inspect", paths["clf"])
    assert "task:          classify" in out and "LSTM × 1" in out and "labels:        neg, pos" in out
    info = json.loads(ok("inspect", paths["tag"], "--json"))
    assert info["task"] == "tag" and info["tag_scheme"] == "bmes" and info["labels"] == models["tag"].labels
    assert info["vocab_size"] == len(models["tag"].vocab)
    assert [i["name"] for i in info["inputs"]] == ["tokens", "h0"]


def test_bench(paths):
    out = ok("bench", paths["lm"], "--steps", "20", "--streams", "1,2", "--seq", "8")
    assert "Stream.step" in out and "ratio" in out and "2 streams" in out and "whole texts" in out
    figures = json.loads(ok("bench", paths["clf"], "--steps", "20", "--streams", "2", "--seq", "8", "--json"))
    assert figures["step"]["ratio"] > 0 and [r["streams"] for r in figures["batcher"]] == [2]


# -- every failure: one line -----------------------------------------------------------------------
@pytest.mark.parametrize(("args", "match"), [
    (["generate", "{missing}"], "no model file"),
    (["inspect", "{junk}"], "not an ONNX model"),
    (["inspect", "{plain}"], "no rnnkit metadata"),
    (["classify", "{future}", "x"], "model format 99 is newer"),
    (["generate", "{clf}", "--prompt", "x"], "generate() needs an lm model"),
    (["classify", "{lm}", "x"], "classify() needs a classify model"),
    (["tag", "{clf}", "x"], "tag() needs a tag model"),
    (["classify", "{clf}", ""], "no tokens"),
    (["classify", "{clf}", "ok", ""], "no tokens"),
    (["tag", "{tag}", ""], "no tokens"),
    (["generate", "{lm}", "--providers", "cuda"], "CUDAExecutionProvider"),
    (["classify", "{clf}", "x", "--providers", "cuda"], "or pass --providers cpu to run on CPU"),
    (["stream", "{clf}"], "not UTF-8"),
])
def test_errors_are_one_line(paths, broken, args, match):
    where = {**paths, **broken}
    if "cuda" in args and HAS_CUDA:
        pytest.skip("CUDA is available here")
    result = run(*[a.format(**where) for a in args], input=b"\xff\xfeabc\n" if args[0] == "stream" else None)
    assert_one_error_line(result, match=match)


@pytest.mark.parametrize(("args", "match"), [
    (["classify", "{clf}"], "give texts"),
    (["bench", "{lm}", "--streams", "a,b"], "--streams"),
    (["bench", "{lm}", "--streams", "0"], "--streams"),
    (["generate", "{lm}", "--providers", "tpu"], "--providers"),
    (["generate", "{lm}", "--top-p", "0"], "--top-p"),
    (["generate", "{lm}", "--temperature", "-1"], "--temperature"),
    (["generate", "{lm}", "--max-tokens", "-1"], "--max-tokens"),
    (["generate", "{lm}", "--stop", ""], "stop must be a non-empty string"),
    (["generate", "{lm}", "--threads", "0"], "--threads"),
    (["tag", "{tag}"], "give texts as arguments or --file"),
])
def test_usage_errors(paths, args, match):
    result = run(*[a.format(**paths) for a in args])
    assert_one_error_line(result, code=2, match=match)
    assert "Usage: cli " + args[0] in result.output  # the subcommand's usage, not the group's


def test_main_prints_one_line_and_exit_codes(paths, tmp_path, capsys, monkeypatch):
    def exit_code(argv):
        with pytest.raises(SystemExit) as e:
            main(argv)
        return e.value.code

    assert exit_code(["generate", str(tmp_path / "missing.onnx")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("Error: no model file")

    assert exit_code(["generate", paths["clf"]]) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.startswith("Error: generate() needs an lm model")

    def broken(self, texts, **kwargs):
        raise TypeError("something inside broke")

    monkeypatch.setattr(Model, "classify", broken)
    assert exit_code(["classify", paths["clf"], "x"]) == 70
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "internal error TypeError: something inside broke" in err
    assert "Traceback" not in err

    result = run("classify", paths["clf"], "x")  # CliRunner on the group: the exception is kept, not shown
    assert result.exit_code == 1 and isinstance(result.exception, TypeError)

    monkeypatch.setenv("RNNKIT_DEBUG", "1")
    with pytest.raises(TypeError, match="something inside broke"):
        main(["classify", paths["clf"], "x"])


def test_the_cli_names_its_own_option_where_the_library_names_a_keyword(paths):
    if HAS_CUDA:
        pytest.skip("CUDA is available here")
    result = run("classify", paths["clf"], "x", "--providers", "cuda")
    assert "fallback=True" not in result.output and "providers='cpu'" not in result.output
    assert result.output.rstrip().endswith("or pass --providers cpu to run on CPU")
