"""Many texts in one call: ``model.tag([...])`` and ``rnnkit tag TEXT... | --file``; ``vocab[i]``."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from factory import tiny_onnx

from rnnkit.runtime import InputError, Vocabulary, load_model
from rnnkit.runtime.cli import cli

TEXTS = ["这本书很好看，我喜欢。", "好", "hello world", "快递很快，包装也好。物流也不错。", "ＡＢ１ 😀", "内容一般般"]


def same(a, b) -> bool:
    return list(a) == list(b) and a.spans == b.spans and a.words == b.words


@pytest.mark.parametrize(("level", "cell", "lookahead"), [("char", "gru", 0), ("char", "lstm", 2), ("word", "rnn", 0),
                                                          ("word", "gru", 1)])
def test_tagging_many_texts_gives_each_what_it_gets_alone(models, level, cell, lookahead):
    model = models(task="tag", cell=cell, level=level, lookahead=lookahead)
    alone = [model.tag(t) for t in TEXTS]
    for size in (64, 2, 1):
        together = model.tag(TEXTS, batch_size=size)
        assert isinstance(together, list) and len(together) == len(TEXTS)
        assert all(same(a, b) for a, b in zip(alone, together)), size
    assert model.tag([]) == []
    assert [tuple(p) for p in model.tag(tuple(TEXTS[:2]))[1]] == [tuple(p) for p in alone[1]]  # any sequence


def test_a_batch_larger_than_max_call_bytes_allows_is_split(tmp_path):
    path = tiny_onnx(tmp_path, task="tag", cell="gru")
    small = load_model(path, max_call_bytes=load_model(path).budget.call_bytes(2, 1))  # 2 rows of one token
    assert small.budget.max_batch() < len(TEXTS)
    assert all(same(a, b) for a, b in zip(small.tag(TEXTS), [small.tag(t) for t in TEXTS]))


def test_bmes_words_come_whole_for_every_text_of_a_batch(models):
    model = models(task="tag", cell="lstm", layers=2)
    for text, result in zip(TEXTS, model.tag(TEXTS)):
        assert "".join(result.words) == "".join(text[a:b] for a, b in result.spans) and result.words


def test_bad_texts_in_a_list_are_named(models):
    model = models(task="tag", cell="gru")
    with pytest.raises(InputError, match=r"^text 2 has no tokens to tag \(it is empty or only whitespace\)$"):
        model.tag(["好", "hello", ""])
    with pytest.raises(TypeError, match="text must be str, got int"):
        model.tag(["好", 3])
    with pytest.raises(InputError, match="the text has no tokens"):
        model.tag("")
    from rnnkit.runtime import ConfigError

    with pytest.raises(ConfigError, match="batch_size must be a positive integer"):
        model.tag(TEXTS, batch_size=0)


@pytest.fixture(scope="module")
def tagger(tmp_path_factory):
    return tiny_onnx(tmp_path_factory.mktemp("tagger"), task="tag", cell="gru")


def test_the_cli_tags_many_texts_and_the_lines_of_a_file(tagger, tmp_path):
    model = load_model(tagger)
    expected = []
    for text in TEXTS[:3]:
        r = model.tag(text)
        expected += [" ".join(f"{t}/{g}" for t, g in r), " / ".join(r.words)]
    run = CliRunner().invoke(cli, ["tag", str(tagger), *TEXTS[:3]])
    assert run.exit_code == 0, run.output
    assert run.stdout.splitlines() == expected
    lines = tmp_path / "texts.txt"
    lines.write_text(f"{TEXTS[0]}\n\n{TEXTS[1]}\n{TEXTS[2]}\n", encoding="utf-8")  # blank lines are skipped
    from_file = CliRunner().invoke(cli, ["tag", str(tagger), "--file", str(lines), "--batch-size", "2"])
    assert from_file.exit_code == 0, from_file.output
    assert from_file.stdout.splitlines() == expected
    piped = CliRunner().invoke(cli, ["tag", str(tagger), "--file", "-", "--json"], input=lines.read_text("utf-8"))
    objects = [json.loads(line) for line in piped.stdout.splitlines()]
    assert [o["tokens"] for o in objects] == [[t for t, _ in model.tag(x)] for x in TEXTS[:3]]
    assert [o["words"] for o in objects] == [model.tag(x).words for x in TEXTS[:3]]


@pytest.mark.parametrize(("args", "code", "says"), [
    ([], 2, "give texts as arguments or --file"),
    (["--file", "{blank}"], 2, "holds no texts (only blank lines)"),
    (["--file", "{missing}"], 2, "missing.txt cannot be read"),
    (["好", ""], 1, "text 1 has no tokens to tag"),
    (["好", "--batch-size", "0"], 2, "--batch-size"),
])
def test_the_cli_refuses_bad_tag_input_in_one_line(tagger, tmp_path, args, code, says):
    blank = tmp_path / "blank.txt"
    blank.write_text("\n \n", encoding="utf-8")
    args = [a.format(blank=blank, missing=tmp_path / "missing.txt") for a in args]
    run = CliRunner().invoke(cli, ["tag", str(tagger), *args])
    assert run.exit_code == code, run.output
    errors = [line for line in run.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and says in errors[0] and "Traceback" not in run.output


def test_a_vocabulary_is_indexable_like_a_list():
    v = Vocabulary.build([["b", "a", "b"]])
    assert [v[i] for i in range(len(v))] == v.tokens == ["<pad>", "<unk>", "<bos>", "<eos>", "b", "a"]
    assert v[-1] == "a" and v[np.int64(4)] == "b" and v[4] == v.decode([4])[0]
    with pytest.raises(IndexError, match=r"token id 6 is outside the vocabulary \(0\.\.5\)"):
        v[6]
    with pytest.raises(IndexError, match="token id -7"):
        v[-7]
    for bad in (1.0, "4", True, None):
        with pytest.raises(TypeError, match="vocabulary ids are integers"):
            v[bad]
