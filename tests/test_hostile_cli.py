"""The commands under hostile files and environments: what a model file says prints escaped; closed
stdin/stdout, a reader that goes away, names that are not UTF-8 or long, inputs that are not files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest
from click.testing import CliRunner
from factory import tiny_onnx
from onnx_edits import rewrite_metadata

from rnnkit.runtime import load_model
from rnnkit.runtime.cli import EXIT_PIPE, cli
from rnnkit.runtime.commands import MAX_TEXT_LINE
from rnnkit.runtime.model import Model
from rnnkit.runtime.vocab import vocab_checksum

ROOT = Path(__file__).resolve().parent.parent
BIDI = set("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
HOSTILE_LABELS = ["pos\x1b[2J\x07", "neg\nError: forged line\r\u202eevil\x85\u2028"]
SHOWN = dict(zip(HOSTILE_LABELS, ["pos\\x1b[2J\\x07", "neg\\nError: forged line\\r\\u202eevil\\x85\\u2028"]))
ESCAPED_TOKENS = {"\x1b[31m": "\\x1b[31m", "\x07": "\\x07", "\r": "\\r", "\u202e": "\\u202e", "\x9b": "\\x9b"}


def unsafe(text: str, *, lines: bool = False) -> list[str]:
    """The characters of ``text`` that must not reach a terminal raw (``lines``: line ends and tabs may)."""
    allowed = {"\n", "\t"} if lines else set()
    return [ch for ch in text if ch not in allowed and (unicodedata.category(ch) in ("Cc", "Zl", "Zp", "Cs")
                                                         or ch in BIDI)]


def run(*args, input=None):
    result = CliRunner().invoke(cli, [str(a) for a in args], input=input)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    clf = tiny_onnx(root / "clf", task="classify", cell="gru")
    lm = tiny_onnx(root / "lm", task="lm", cell="gru")
    tagger = tiny_onnx(root / "tag", task="tag", cell="gru", labels=("N", "V"))
    tokens = load_model(lm).vocab.tokens
    hostile = [*ESCAPED_TOKENS, "\n", "\t"]
    tokens[4 : 4 + len(hostile)] = hostile
    return {
        "root": root, "clf": clf, "lm": lm, "tagger": tagger,
        "labels": rewrite_metadata(clf, root / "labels.onnx", labels=json.dumps(HOSTILE_LABELS)),
        "tag_labels": rewrite_metadata(tagger, root / "tag-labels.onnx", labels=json.dumps(["N\x1b]0;x\x07", "V\n"])),
        "vocab": rewrite_metadata(lm, root / "vocab.onnx", vocab=json.dumps(tokens),
                                  vocab_sha256=vocab_checksum(tokens)),
        "provenance": rewrite_metadata(clf, root / "provenance.onnx", provenance=json.dumps(
            {"rnnkit": "1\x1b[2J", "torch": "\u202e2", "onnx": "3\nforged: yes", "created": "\x07"}),
            metrics=json.dumps({"valid": {"note\x1b[5m": "\x9b\u2029"}})),
    }


# -- printing what a file says ---------------------------------------------------------------------
def test_the_hostile_labels_really_hold_control_characters(files):
    model = load_model(files["labels"])
    assert model.labels == HOSTILE_LABELS and unsafe("".join(model.labels))


@pytest.mark.parametrize(("name", "source"), [("labels", "clf"), ("vocab", "lm"), ("provenance", "clf"),
                                              ("tag_labels", "tagger")])
def test_inspect_escapes_what_the_file_says(files, name, source):
    out = run("inspect", files[name])
    assert not unsafe(out, lines=True)
    assert "\t" not in out and out.count("\n") == run("inspect", files[source]).count("\n")  # no line forged
    info = json.loads(run("inspect", files[name], "--json"))  # the exact values, escaped as JSON escapes them
    assert not unsafe(run("inspect", files[name], "--json"), lines=True)
    model = load_model(files[name])
    assert info["labels"] == model.labels and info["provenance"] == model.metadata.provenance


def test_inspect_shows_labels_escaped_not_dropped(files):
    out = run("inspect", files["labels"])
    assert f"labels:        {SHOWN[HOSTILE_LABELS[0]]}, {SHOWN[HOSTILE_LABELS[1]]}\n" in out
    assert not any(line.startswith("Error:") for line in out.splitlines())


def test_classify_prints_the_escaped_label_one_line_per_text(files):
    texts = ["好", "差\x1b[2Jtext", "ok"]
    out = run("classify", files["labels"], *texts)
    lines = out.splitlines()
    assert len(lines) == 3 and not unsafe(out, lines=True)
    preds = load_model(files["labels"]).classify(texts)
    for line, p in zip(lines, preds):
        label, score, _ = line.split("\t")  # the label's own tab and line end cannot add a column or a line
        assert label == SHOWN[p.label]
        assert float(score) == pytest.approx(p.score, abs=1e-4)
    assert lines[1].endswith("差\\x1b[2Jtext")
    rows = [json.loads(line) for line in run("classify", files["labels"], *texts, "--json").splitlines()]
    assert [r["label"] for r in rows] == [p.label for p in preds] and rows[1]["text"] == texts[1]


def test_stream_and_tag_print_escaped_labels(files):
    out = run("stream", files["labels"], input="好\n差\n")
    assert len(out.splitlines()) == 2 and not unsafe(out, lines=True)
    out = run("tag", files["tag_labels"], "我\x1b爱")
    assert not unsafe(out, lines=True) and len(out.splitlines()) == 1 and "\\x1b" in out
    data = json.loads(run("tag", files["tag_labels"], "我爱", "--json"))
    assert set(data["tags"]) <= {"N\x1b]0;x\x07", "V\n"}
    out = run("stream", files["tag_labels"], input="我爱北京\n天安门\n")
    assert not unsafe(out, lines=True) and out.count("\n") == len(out.splitlines())


def test_generate_keeps_line_ends_and_escapes_the_rest(files):
    model = load_model(files["vocab"])
    text = "".join(model.generate("", max_tokens=300, seed=0))
    assert set(unsafe(text)) - {"\n", "\t"}, "the library gives the tokens raw: the test would prove nothing"
    out = run("generate", files["vocab"], "--max-tokens", "300", "--seed", "0")
    assert not unsafe(out, lines=True)
    assert out.count("\n") == text.count("\n") + 1 and out.count("\t") == text.count("\t")
    for token, shown in ESCAPED_TOKENS.items():
        assert out.count(shown) == text.count(token)
    lm_top = run("stream", files["vocab"], "--top", "20", input="o\n")
    assert not unsafe(lm_top, lines=True) and len(lm_top.splitlines()) == 1


def test_an_error_line_quoting_a_path_stays_one_escaped_line(files, capsys):
    from rnnkit.runtime.cli import main

    with pytest.raises(SystemExit) as e:
        main(["classify", str(files["root"] / "no\n\x1b[2Jsuch.onnx"), "x"])
    err = capsys.readouterr().err
    assert e.value.code == 1 and err.count("\n") == 1 and "\x1b" not in err and "no\\n\\x1b[2Jsuch.onnx" in err


# -- inputs: --file and stdin ----------------------------------------------------------------------
def test_classify_reads_file_lines_a_batch_at_a_time(files, monkeypatch):
    seen: list[int] = []
    real = Model.classify

    def spy(self, texts, **kwargs):
        seen.append(len(texts))
        return real(self, texts, **kwargs)

    monkeypatch.setattr(Model, "classify", spy)
    out = run("classify", files["clf"], "a", "--file", "-", "--batch-size", "2", input="好\n\n差\nok\n一\n")
    assert seen == [2, 2, 1]  # never the whole input at once: an endless stdin is labelled as it comes
    assert [line.split("\t")[2] for line in out.splitlines()] == ["a", "好", "差", "ok", "一"]


def test_a_line_at_the_limit_is_a_text(files, tmp_path):
    f = tmp_path / "long.txt"
    f.write_text("好" * MAX_TEXT_LINE + "\n差\n", encoding="utf-8")
    assert len(run("classify", files["clf"], "--file", f).splitlines()) == 2


def test_stream_feeds_a_long_line_in_pieces_and_ends_where_the_whole_text_does(files):
    model = load_model(files["clf"])
    text = ("好书" * 40_000)[:70_000]  # longer than one piece (65,536 characters)
    out = run("stream", files["clf"], input=text + "\n").splitlines()
    assert len(out) == 2
    s = model.stream()
    s.feed(text)
    p = s.prediction()
    assert out[-1] == f"{p.label}\t{p.score:.4f}"
    every = run("stream", files["clf"], "--reset-each-line", input=f"{text}\n{text}\n").splitlines()
    assert every[1] == every[3] == out[-1]  # each line starts afresh, not each piece


# -- the environment, in real processes ---------------------------------------------------------
def rnnkit(*args, stdin=None, close=(), timeout=120):
    """``rnnkit ARGS`` (str, paths or bytes) in a new process, with the file descriptors in ``close`` closed."""
    code = "import sys; from rnnkit.runtime.cli import main; main(sys.argv[1:])"  # argv as the console script has it

    def closing():  # runs in the child once its stdin/stdout/stderr are in place
        for fd in close:
            os.close(fd)

    return subprocess.run([sys.executable, "-c", code, *map(os.fsencode, args)], stdin=stdin,
                          capture_output=True, preexec_fn=closing if close else None,
                          timeout=timeout, cwd=ROOT)


def test_a_reader_that_goes_away_ends_generate_quietly(files):
    code = "from rnnkit.runtime.cli import main; import sys; main(sys.argv[1:])"
    proc = subprocess.Popen([sys.executable, "-c", code, "generate", str(files["lm"]), "--max-tokens", "200000",
                             "--temperature", "0"],  # greedy: this tiny lm then never ends at <eos>
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
    assert proc.stdout.read(1)
    proc.stdout.close()  # `| head -c1`
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == EXIT_PIPE == 141
    assert err == ""  # no traceback, no "Exception ignored", no Error line


@pytest.mark.parametrize("args", [["generate", "{lm}", "--max-tokens", "5"], ["inspect", "{clf}"],
                                  ["classify", "{clf}", "好"]])
def test_a_closed_stdout_loses_the_output_and_nothing_else(files, args):
    result = rnnkit(*[a.format(**files) for a in args], close=(1,))
    assert result.returncode == 0 and result.stderr == b""


def test_a_closed_stderr_keeps_the_exit_code(files):
    assert rnnkit("inspect", files["root"] / "missing.onnx", close=(1, 2)).returncode == 1


@pytest.mark.parametrize("args", [["stream", "{clf}"], ["classify", "{clf}", "--file", "-"]])
def test_a_closed_stdin_is_one_error_line(files, args):
    result = rnnkit(*[a.format(**files) for a in args], close=(0,))
    assert result.returncode == 1
    assert result.stderr.decode().splitlines() == [
        "Error: stdin is closed: nothing to read; pipe or redirect the text into it (… < texts.txt)"]


def test_stdin_from_dev_null_is_an_empty_input(files):
    with open(os.devnull, "rb") as null:
        result = rnnkit("stream", files["clf"], stdin=null)
    assert result.returncode == 0 and result.stdout == b"" and result.stderr == b""


def test_a_model_and_a_file_whose_names_are_not_utf8(files, tmp_path):
    folder = os.fsencode(tmp_path)
    model = folder + b"/model-\xff\xfe.onnx"
    texts = folder + b"/texts-\xff.txt"
    with open(model, "wb") as f:
        f.write(files["clf"].read_bytes())
    with open(texts, "wb") as f:
        f.write("好\n差\n".encode())
    result = rnnkit("classify", model, "--file", texts)
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode().splitlines()[1].endswith("\t差")
    shown = rnnkit("inspect", model)
    assert shown.returncode == 0 and shown.stdout.decode().splitlines()[0].startswith(
        f"{tmp_path}/model-\\xff\\xfe.onnx  (")
    missing = rnnkit("classify", folder + b"/gone-\xff.onnx", "x")
    assert missing.returncode == 1 and missing.stderr.decode().strip() == \
        f"Error: no model file at {tmp_path}/gone-\\xff.onnx"


def test_names_of_250_characters(files, tmp_path):
    model = tmp_path / ("m" * 245 + ".onnx")
    texts = tmp_path / ("t" * 250)
    model.write_bytes(files["clf"].read_bytes())
    texts.write_text("好\n", encoding="utf-8")
    result = rnnkit("classify", model, "--file", texts, "差")
    assert result.returncode == 0, result.stderr
    assert [line.split("\t")[2] for line in result.stdout.decode().splitlines()] == ["差", "好"]


def test_a_fifo_without_a_writer_is_refused_at_once(files, tmp_path):
    fifo = tmp_path / "texts.fifo"
    os.mkfifo(fifo)
    result = rnnkit("classify", files["clf"], "--file", fifo, timeout=60)  # a blocked open would time out
    assert result.returncode == 2 and b"is not a regular file" in result.stderr
