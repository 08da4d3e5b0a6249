"""Scoring a model on labelled data from the runtime: numpy metrics, ``Model.evaluate``, ``rnnkit evaluate``,
pre-tokenized input (``tokens=``), and the hint ``classify --file`` gives for labelled lines."""

from __future__ import annotations

import json
import math
import random

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from rnnkit.export import export_onnx  # noqa: E402
from rnnkit.runtime import DataError, Evaluation, InputError, load_model  # noqa: E402
from rnnkit.runtime.cli import main  # noqa: E402
from rnnkit.runtime.metrics import class_scores, confusion_matrix, macro_f1, word_prf  # noqa: E402
from rnnkit.runtime.tagging import bmes_spans  # noqa: E402
from rnnkit.train import TrainConfig, train  # noqa: E402

WORDS = ["我", "爱", "北京", "天安门", "中国", "人民", "好", "学习", "工作", "今天", "天气", "很", "不错"]


def tiny_run(tmp_path, name: str, task: str, lines: list[str], suffix: str, **options):
    data = tmp_path / f"{name}{suffix}"
    data.write_text("\n".join(lines) + "\n", encoding="utf-8")
    train(TrainConfig(task=task, data=str(data), out=str(tmp_path / name), hidden=24, embed=8, lr=0.02,
                      patience=0, seed=0, device="cpu", threads=1, **options))
    export_onnx(tmp_path / name, tmp_path / f"{name}.onnx")
    return load_model(tmp_path / f"{name}.onnx", providers="cpu")


def review_lines(rng: random.Random, n: int) -> list[str]:
    """``label<TAB>text``: pos texts hold 好, neg ones 差, amid random filler."""
    lines = []
    for i in range(n):
        label = "pos" if i % 2 else "neg"
        filler = [rng.choice("书很的了是这个") for _ in range(rng.randint(2, 6))]
        filler.insert(rng.randrange(len(filler) + 1), "好" if label == "pos" else "差")
        lines.append(f"{label}\t{''.join(filler)}")
    return lines


def segmented_lines(rng: random.Random, n: int, *, lower: bool = False) -> list[str]:
    """Characters tagged B/M/E/S from sentences of WORDS."""
    lines = []
    for _ in range(n):
        items = []
        for word in (rng.choice(WORDS) for _ in range(rng.randint(3, 7))):
            tags = "S" if len(word) == 1 else "B" + "M" * (len(word) - 2) + "E"
            items += [f"{ch}/{tag.lower() if lower else tag}" for ch, tag in zip(word, tags)]
        lines.append(" ".join(items))
    return lines


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("trained")
    rng = random.Random(0)
    return {
        "clf": tiny_run(root, "clf", "classify", review_lines(rng, 80), ".tsv", epochs=4),
        "seg": tiny_run(root, "seg", "tag", segmented_lines(rng, 150), ".txt", epochs=15),
        "lm": tiny_run(root, "lm", "lm", [" ".join(rng.sample(WORDS, 5)) for _ in range(60)], ".txt", epochs=5,
                       batch_size=4, bptt=16),
    }


def write(tmp_path, name: str, lines: list[str]) -> str:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


def cli(capsys, *argv) -> tuple[int, str, str]:
    capsys.readouterr()
    code = 0
    try:
        main([str(a) for a in argv])
    except SystemExit as e:
        code = e.code
    out = capsys.readouterr()
    return code, out.out, out.err


# -- the numpy metrics, against hand-computed values ----------------------------------------------
def test_class_metrics_by_hand():
    gold, pred = [0, 0, 0, 1, 1, 2], [0, 1, 0, 1, 2, 2]
    m = confusion_matrix(gold, pred, 3)
    assert m.tolist() == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    assert np.trace(m) / m.sum() == pytest.approx(4 / 6)  # accuracy, as evaluate reads it
    scores = class_scores(m, ["a", "b", "c"])
    assert scores["a"] == pytest.approx({"precision": 1.0, "recall": 2 / 3, "f1": 0.8, "support": 3})
    assert scores["b"] == pytest.approx({"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2})
    assert scores["c"] == pytest.approx({"precision": 0.5, "recall": 1.0, "f1": 2 / 3, "support": 1})
    assert macro_f1(m) == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)
    # a class the sample never holds nor predicts still counts (F1 0): the figure is over the model's classes
    assert macro_f1(confusion_matrix([0, 1], [0, 1], 3)) == pytest.approx(2 / 3)
    assert macro_f1(np.zeros((0, 0))) == 0.0
    with pytest.raises(InputError, match=r"class ids must be in 0\.\.2"):
        confusion_matrix([3], [0], 3)


def test_word_scores_by_hand():
    gold = set(bmes_spans(list("BESBME")))  # (0,2) (2,3) (3,6)
    pred = set(bmes_spans(list("BEBESS")))  # (0,2) (2,4) (4,5) (5,6)
    p, r, f = word_prf([gold], [pred])
    assert (p, r) == (pytest.approx(1 / 4), pytest.approx(1 / 3))
    assert f == pytest.approx(2 * (1 / 4) * (1 / 3) / (1 / 4 + 1 / 3))
    assert word_prf([set()], [set()]) == (0.0, 0.0, 0.0)


def test_training_scores_with_the_runtimes_metrics():
    from rnnkit.train import evaluate as train_evaluate

    assert train_evaluate.word_prf is word_prf and train_evaluate.macro_f1 is macro_f1


# -- classify ---------------------------------------------------------------------------------------
def test_classify_accuracy_is_what_classify_gives_on_the_same_lines(trained, tmp_path):
    model = trained["clf"]
    lines = review_lines(random.Random(7), 40)
    report = model.evaluate(write(tmp_path, "test.tsv", lines), batch_size=7)
    assert isinstance(report, Evaluation) and report.task == "classify"
    gold = [line.split("\t")[0] for line in lines]
    pred = [p.label for p in model.classify([line.split("\t")[1] for line in lines])]
    m = report.metrics
    hits = sum(g == q for g, q in zip(gold, pred))
    assert m["accuracy"] == pytest.approx(hits / len(gold)) and m["accuracy"] > 0.6  # it learned something
    assert m["count"] == 40 and m["unscored"] == 0 and m["unknown_labels"] == {}
    index = {label: i for i, label in enumerate(model.labels)}
    confusion = confusion_matrix([index[g] for g in gold], [index[p] for p in pred], len(model.labels))
    assert m["confusion"] == confusion.tolist()
    assert m["macro_f1"] == pytest.approx(macro_f1(confusion))
    assert list(m["per_class"]) == model.labels == list(report.labels)
    assert sum(s["support"] for s in m["per_class"].values()) == 40
    # the same examples as values, and as JSONL, score the same
    examples = [(line.split("\t")[1], line.split("\t")[0]) for line in lines]
    assert model.evaluate(examples).metrics == m
    jsonl = write(tmp_path, "test.jsonl",
                  [json.dumps({"text": t, "label": g}, ensure_ascii=False) for t, g in examples])
    assert model.evaluate(jsonl).metrics == m


def test_labels_the_model_does_not_know_are_left_out_and_counted(trained, tmp_path):
    model = trained["clf"]
    lines = review_lines(random.Random(8), 20)
    base = model.evaluate(write(tmp_path, "known.tsv", lines)).metrics
    report = model.evaluate(write(tmp_path, "mixed.tsv", [*lines, "mid\t一般般", "mid\t还行", "meh\t嗯"]))
    m = report.to_dict()
    assert m["unscored"] == 3 and m["unknown_labels"] == {"meh": 1, "mid": 2}
    assert {k: m[k] for k in ("accuracy", "macro_f1", "count", "confusion")} == \
        {k: base[k] for k in ("accuracy", "macro_f1", "count", "confusion")}
    assert "not scored: 3 examples with a label the model does not know: meh (1), mid (2)" in report.lines()
    with pytest.raises(DataError, match=r"none\.tsv: none of the 2 examples can be scored: the model knows no label "
                                        r"of theirs \(it knows neg, pos\)"):
        model.evaluate(write(tmp_path, "none.tsv", ["mid\t一般", "meh\t嗯"]))


def test_skip_bad_skips_and_counts_bad_lines_as_training_does(trained, tmp_path):
    model = trained["clf"]
    path = write(tmp_path, "bad.tsv", ["pos\t很好", "no tab here", "neg\t很差"])
    with pytest.raises(DataError, match=r"bad\.tsv:2: no tab: write `label<TAB>text`; fix it, or pass --skip-bad"):
        model.evaluate(path)
    from rnnkit.train.data import load_data

    with pytest.raises(DataError) as training:
        load_data(path, "classify")
    with pytest.raises(DataError) as scoring:
        model.evaluate(path)
    assert str(training.value) == str(scoring.value)  # one reader, one message
    report = model.evaluate(path, skip_bad=True)
    assert report.skipped == 1 and report.metrics["count"] == 2 and report.to_dict()["skipped_lines"] == 1


def test_the_classify_command_prints_a_table_and_json(trained, tmp_path, capsys):
    model = trained["clf"]
    path = write(tmp_path, "test.tsv", review_lines(random.Random(9), 12))
    code, out, err = cli(capsys, "evaluate", model.path, "--data", path)
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[0] == f"{path}: 12 examples"
    assert lines[1].startswith("accuracy  ") and lines[2].startswith("macro F1  ")
    assert "label  precision  recall  f1      support" in lines
    assert any(line.startswith("neg    ") for line in lines) and "confusion (rows: gold, columns: predicted)" in lines
    code, out, err = cli(capsys, "evaluate", model.path, "--data", path, "--json", "--batch-size", "3")
    figures = json.loads(out)
    assert code == 0 and {"accuracy", "macro_f1", "count", "per_class", "confusion", "unscored", "unknown_labels",
                          "task", "labels", "source", "skipped_lines"} == set(figures)
    assert figures == model.evaluate(path).to_dict()


def test_classify_file_warns_once_when_its_lines_look_labelled(trained, tmp_path, capsys):
    model = trained["clf"]
    labelled = write(tmp_path, "labelled.tsv", review_lines(random.Random(10), 5))
    code, out, err = cli(capsys, "classify", model.path, "--file", labelled)
    assert code == 0 and len(out.splitlines()) == 5  # still classified, whole lines
    assert err.count("\n") == 1 and err.startswith("Warning: the first column of")
    assert f"`rnnkit evaluate {model.path} --data {labelled}`" in err
    plain = write(tmp_path, "plain.txt", ["这本书很好", "质量太差了", "pos\t很好"])  # a tab in one line of three
    code, out, err = cli(capsys, "classify", model.path, "--file", plain)
    assert code == 0 and err == "" and len(out.splitlines()) == 3


# -- tag --------------------------------------------------------------------------------------------
def test_tag_scores_are_token_accuracy_and_word_f1_over_the_tokens_given(trained, tmp_path):
    model = trained["seg"]
    lines = segmented_lines(random.Random(11), 30, lower=True)  # b/m/e/s read as B/M/E/S, as training reads them
    report = model.evaluate(write(tmp_path, "seg.txt", lines), batch_size=4)
    m = report.metrics
    correct = total = 0
    gold_spans, pred_spans = [], []
    for line in lines:
        chars = [item.rpartition("/")[0] for item in line.split()]
        gold = [item.rpartition("/")[2].upper() for item in line.split()]
        pred = [t for _, t in model.tag("".join(chars))]  # no whitespace: the tokenizer cuts the same
        correct += sum(g == p for g, p in zip(gold, pred))
        total += len(gold)
        gold_spans.append(set(bmes_spans(gold)))
        pred_spans.append(set(bmes_spans(pred)))
    assert m["count"] == total and m["examples"] == 30
    assert m["accuracy"] == pytest.approx(correct / total) and m["accuracy"] > 0.7
    p, r, f = word_prf(gold_spans, pred_spans)
    assert (m["word_precision"], m["word_recall"], m["word_f1"]) == (pytest.approx(p), pytest.approx(r),
                                                                     pytest.approx(f))
    assert {"accuracy", "word_f1", "count"} <= set(report.to_dict())
    shown = report.lines()
    assert shown[1].startswith("token accuracy  ") and shown[-1].startswith("word F1         ")


def test_tags_the_model_does_not_know_leave_their_examples_out(trained, tmp_path):
    model = trained["seg"]
    good = segmented_lines(random.Random(12), 5)
    base = model.evaluate(write(tmp_path, "good.txt", good)).metrics
    mixed = model.evaluate(write(tmp_path, "mixed.txt", [*good, "我/S 爱/X 北/B 京/E"])).metrics
    assert mixed["unscored"] == 1 and mixed["unknown_tags"] == {"X": 1}
    assert mixed["accuracy"] == base["accuracy"] and mixed["count"] == base["count"]
    with pytest.raises(DataError, match="none of the 1 examples can be scored: the model knows no tag of theirs"):
        model.evaluate(write(tmp_path, "pos.txt", ["我/r 爱/v 北京/ns"]))


def test_a_tagger_without_bmes_has_no_word_scores(models, tmp_path):
    model = models(task="tag", cell="rnn", labels=("N", "V", "X"))
    m = model.evaluate([(["好", "书"], ["N", "V"]), (["hello"], ["X"])]).metrics
    assert set(m) == {"accuracy", "count", "examples", "unscored", "unknown_tags"} and m["count"] == 3


# -- lm ---------------------------------------------------------------------------------------------
def stepped_nll(model, docs: list[str]) -> tuple[float, int]:
    """−log p of every token and of <eos>, stepping a stream token by token from its start (after <bos>)."""
    total, n = 0.0, 0
    for doc in docs:
        stream = model.stream()
        logits = stream.logits
        for token in [*model.encode(doc), model.vocab.eos_id]:
            z = logits.astype(np.float64)
            total -= z[token] - z.max() - math.log(np.exp(z - z.max()).sum())
            n += 1
            logits = stream.step(token)
    return total, n


def test_lm_perplexity_is_exp_of_the_mean_nll_of_stepping_each_document(trained, models, tmp_path):
    docs = ["我爱北京天安门", "今天 天气 很 不错", "hello", "好"]
    for model in (trained["lm"], models(task="lm", cell="lstm", layers=2, level="word")):
        report = model.evaluate(write(tmp_path, "docs.txt", docs), batch_size=3)
        total, n = stepped_nll(model, docs)
        m = report.metrics
        assert m["tokens"] == n and m["documents"] == 4
        assert m["loss"] == pytest.approx(total / n, rel=1e-5)
        assert m["perplexity"] == pytest.approx(math.exp(total / n), rel=1e-5)
        assert model.evaluate(docs).metrics == pytest.approx(m)
    like_training = [" ".join(random.Random(3).sample(WORDS, 5)) for _ in range(10)]
    assert trained["lm"].evaluate(like_training).metrics["perplexity"] < len(trained["lm"].vocab) / 3  # it learned


def test_the_lm_command_prints_perplexity(trained, tmp_path, capsys):
    path = write(tmp_path, "docs.txt", ["我爱北京", "今天 天气"])
    code, out, _ = cli(capsys, "evaluate", trained["lm"].path, "--data", path, "--json")
    assert code == 0 and {"perplexity", "loss", "tokens", "documents"} <= set(json.loads(out))
    code, out, _ = cli(capsys, "evaluate", trained["lm"].path, "--data", path)
    assert code == 0 and any(line.startswith("perplexity  ") for line in out.splitlines())


# -- tokens= ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("lookahead", [0, 2])
def test_tag_tokens_equal_the_text_where_the_tokenizer_cuts_the_same(models, lookahead):
    model = models(task="tag", cell="gru", lookahead=lookahead)
    texts = ["我爱北京天安门", "好", "质量太差了，不推荐！"]
    for text in texts:
        by_text, by_tokens = model.tag(text), model.tag(tokens=list(text))
        assert list(by_tokens) == list(by_text)
        assert by_tokens.spans == by_text.spans and by_tokens.words == by_text.words
    many = model.tag(tokens=[list(t) for t in texts], batch_size=2)
    assert [list(r) for r in many] == [list(model.tag(t)) for t in texts]


def test_tag_tokens_are_read_as_given(models):
    model = models(task="tag", cell="gru", level="word", lookahead=1)
    tokens = model.tokenizer.tokenize("我爱北京天安门")
    assert list(model.tag(tokens=tokens)) == list(model.tag("我爱北京天安门"))
    result = model.tag(tokens=["ＡＢ", "我"])  # normalised as text is, reported as given
    assert [t for t, _ in result] == ["ＡＢ", "我"] and result.spans == [(0, 2), (2, 3)]
    assert [g for _, g in result] == [g for _, g in model.tag(tokens=["AB", "我"])]
    assert "".join(result.words) == "ＡＢ我"


def test_classify_tokens_equal_the_text_and_unknown_tokens_are_unk(models):
    for level in ("char", "word"):
        model = models(task="classify", cell="gru", level=level)
        texts = ["这本书很好看，我喜欢。", "hello world", "写得不错"]
        for text in texts:
            a, b = model.classify(text), model.classify(tokens=model.tokenizer.tokenize(text))
            np.testing.assert_allclose(list(a.scores.values()), list(b.scores.values()), atol=1e-6)
        many = model.classify(tokens=[model.tokenizer.tokenize(t) for t in texts], batch_size=2)
        assert [p.label for p in many] == [p.label for p in model.classify(texts)]
    unseen = model.classify(tokens=["從未見過的詞"]).scores
    assert unseen == model.classify(tokens=["另一个没见过"]).scores  # both <unk>


def test_tokens_that_cannot_be_read(models):
    tagger, clf = models(task="tag", cell="gru"), models(task="classify", cell="gru")
    with pytest.raises(TypeError, match="not both"):
        tagger.tag("我", tokens=["我"])
    with pytest.raises(TypeError, match="not neither"):
        clf.classify()
    with pytest.raises(TypeError, match="token 1 of list 0 is int"):
        tagger.tag(tokens=[["我", 1]])
    with pytest.raises(TypeError, match="got str"):
        clf.classify(tokens="好看")
    with pytest.raises(InputError, match="the token list is empty; nothing to tag"):
        tagger.tag(tokens=[])
    with pytest.raises(InputError, match="token list 1 is empty; nothing to classify"):
        clf.classify(tokens=[["好"], []])
    with pytest.raises(InputError, match="token 1 is an empty string"):
        clf.classify(tokens=["好", ""])


# -- what evaluate refuses (the catalogue rows go through tests/cases_evaluate.py) ---------------------
def test_evaluate_refuses_what_it_cannot_score(models, tmp_path):
    clf = models(task="classify", cell="gru")
    with pytest.raises(TypeError, match="skip_bad must be True or False"):
        clf.evaluate([("好", "pos")], skip_bad="yes")
    with pytest.raises(TypeError, match=r"a path \(str or pathlib\.Path\) or a list of examples, got bytes"):
        clf.evaluate(b"test.tsv")
    with pytest.raises(TypeError, match=r"example 1 is a tuple of 3 \(str, str, str\)"):
        clf.evaluate([("好", "pos"), ("差", "neg", "x")])
    lm = models(task="lm", cell="gru")
    with pytest.raises(DataError, match=r"blank\.txt \(it is empty or blank\)"):
        lm.evaluate(write(tmp_path, "blank.txt", ["", "  "]))
