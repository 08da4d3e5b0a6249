"""classify, running predictions, tag (spans of the caller's text, B/M/E/S words), and a torch-free process."""

from __future__ import annotations

import json

import numpy as np
import pytest
from factory import tiny_onnx

from rnnkit.runtime import Prediction, load_model
from rnnkit.runtime.tagging import bmes_spans

TEXTS = ["好", "这本书很好看，我喜欢。", "质量太差了", "hello world", "快递很快，包装也好。物流也不错。", "ＡＢ１",
         "😀", "内容一般般"]


def scores(p: Prediction) -> np.ndarray:
    return np.array(list(p.scores.values()))


@pytest.mark.parametrize(("cell", "layers", "level"), [("rnn", 1, "char"), ("gru", 2, "word"), ("lstm", 2, "char"),
                                                       ("lstm", 1, "word")])
def test_classify_batch_of_uneven_lengths_equals_one_by_one(models, cell, layers, level):
    model = models(task="classify", cell=cell, layers=layers, level=level, labels=("neg", "mid", "pos"))
    for batch_size in (64, 3):
        batch = model.classify(TEXTS, batch_size=batch_size)
        assert isinstance(batch, list) and len(batch) == len(TEXTS)
        for text, p in zip(TEXTS, batch):
            alone = model.classify(text)
            assert isinstance(alone, Prediction)
            assert list(p.scores) == ["neg", "mid", "pos"]
            np.testing.assert_allclose(scores(p), scores(alone), atol=1e-5, rtol=0)
            assert p.label == max(p.scores, key=p.scores.get) and p.score == p.scores[p.label]
            assert sum(p.scores.values()) == pytest.approx(1.0)
    assert model.classify(iter(TEXTS[:2])) == model.classify(TEXTS[:2])
    assert model.classify([]) == []


def test_classify_reads_the_last_real_step(models):
    model = models(task="classify", cell="gru", layers=2)
    for text in TEXTS[1:4]:
        logits, _ = model.run(np.array([model.encode(text)]))
        np.testing.assert_allclose(scores(model.classify(text)), scores(model.prediction(logits[0, -1])),
                                   atol=1e-6, rtol=0)


@pytest.mark.parametrize("level", ["char", "word"])
def test_running_prediction_follows_the_text(models, level):
    model = models(task="classify", cell="lstm", layers=2, level=level)
    s = model.stream()
    assert s.prediction() is None
    text = "快递很快，包装也好。物流也不错。"
    prefix = ""
    for piece in ("快递很快，", "包装也好。", "物流也不错。"):
        s.feed(piece)
        prefix += piece
        np.testing.assert_allclose(scores(s.prediction()), scores(model.classify(prefix)), atol=1e-5, rtol=0)
    s2 = model.stream()
    s2.feed(text)
    s2.flush()
    assert s2.prediction().label == model.classify(text).label
    np.testing.assert_allclose(scores(s2.prediction()), scores(model.classify(text)), atol=1e-5, rtol=0)


TAG_TEXT = "ＡＢ我爱北京 天安门，hello！１２3"


@pytest.mark.parametrize("level", ["char", "word"])
@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_tag_tokens_are_spans_of_the_original_text(models, level, cell):
    model = models(task="tag", cell=cell, level=level)
    result = model.tag(TAG_TEXT)
    tokens = [t for t, _ in result]
    assert "".join(tokens) == TAG_TEXT  # whitespace is kept by default
    assert all(TAG_TEXT[a:b] == t for (a, b), t in zip(result.spans, tokens))
    assert [b for _, b in result.spans[:-1]] == [a for a, _ in result.spans[1:]]
    if level == "char":
        assert tokens == list(TAG_TEXT)
    else:
        assert "ＡＢ" in tokens  # normalised to "AB" for jieba, reported as typed
    assert {tag for _, tag in result} <= set(model.labels)
    ids = model.encode(TAG_TEXT)
    logits, _ = model.run(np.array([ids]))
    assert [tag for _, tag in result] == [model.labels[i] for i in logits[0].argmax(-1)]


def test_bmes_words_concatenate_back_to_the_text(models):
    model = models(task="tag", cell="lstm", layers=2)
    for text in ("我爱北京天安门", TAG_TEXT, "ＡＢ", "好"):
        result = model.tag(text)
        assert "".join(result.words) == text
        tags = [tag for _, tag in result]
        starts = [i for i, tag in enumerate(tags) if i == 0 or tag in "BS" or tags[i - 1] in "ES"]
        assert len(result.words) == len(starts) == len(bmes_spans(tags))
        assert [len(w) for w in result.words] == np.diff([*starts, len(text)]).tolist()


@pytest.mark.parametrize("k", [1, 3])
def test_a_lookahead_tagger_is_fed_k_pads_and_read_k_steps_later(models, k, monkeypatch):
    model = models(task="tag", cell="gru", lookahead=k)
    assert model.metadata.lookahead == k
    text = "我爱北京天安门。"
    ids = model.encode(text)
    seen = []
    real = model.run
    monkeypatch.setattr(model, "run", lambda tokens, state=None, **kw: seen.append(tokens.copy())
                        or real(tokens, state, **kw))
    result = model.tag(text)
    [tokens] = seen
    assert tokens.tolist() == [ids + [model.vocab.pad_id] * k]
    logits, _ = real(tokens, model.zero_state(1))  # (1, T + k, n_labels)
    assert [tag for _, tag in result] == [model.labels[i] for i in logits[0, k:].argmax(-1)]
    assert len(result) == len(text)


def test_plain_tagger_has_no_words(models):
    model = models(task="tag", cell="gru", labels=("N", "V", "X"))
    result = model.tag("我爱北京")
    assert result.words is None
    assert [t for t, _ in result] == list("我爱北京") and {g for _, g in result} <= {"N", "V", "X"}


def test_model_attributes(models):
    lm, clf, tagger = models(task="lm"), models(task="classify"), models(task="tag")
    assert (lm.task, lm.labels, lm.n_out) == ("lm", [], len(lm.vocab))
    assert (clf.task, clf.labels, clf.n_out) == ("classify", ["neg", "pos"], 2)
    assert tagger.labels == list(tagger.metadata.labels) and tagger.metadata.tag_scheme == "bmes"
    assert lm.providers == ["CPUExecutionProvider"]
    assert lm.tokenizer.kind == "char" and lm.metadata.cell == "gru"
    assert "task='lm'" in repr(lm)


def test_runtime_runs_where_torch_and_onnx_cannot_be_imported(tmp_path, fresh_python):
    paths = {
        "lm": tiny_onnx(tmp_path / "lm", task="lm", cell="lstm", level="word"),
        "clf": tiny_onnx(tmp_path / "clf", task="classify", cell="gru"),
        "tag": tiny_onnx(tmp_path / "tag", task="tag", cell="rnn"),
    }
    r = fresh_python(f"""
        import json, sys
        from rnnkit.runtime import load_model
        paths = {json.dumps({k: str(v) for k, v in paths.items()})}
        lm, clf, tagger = (load_model(paths[k]) for k in ("lm", "clf", "tag"))
        out = {{}}
        out["generate"] = list(lm.generate("我爱", max_tokens=5, seed=1))
        out["classify"] = [p.label for p in clf.classify(["很好", "太差了，不推荐"])]
        out["tag_words"] = tagger.tag("我爱北京").words
        s = lm.stream()
        s.feed("这本书很好看")
        s.flush()
        b = s.snapshot()
        out["stream"] = [s.consumed, lm.stream(b).consumed, s.fork().consumed]
        clf_stream = clf.stream()
        clf_stream.feed("很好")
        out["prediction"] = clf_stream.prediction().label
        out["heavy"] = sorted(m for m in ("torch", "onnx") if m in sys.modules)
        print(json.dumps(out, ensure_ascii=False))
    """, block=("torch", "onnx"))
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["heavy"] == []
    assert 1 <= len(out["generate"]) <= 5
    assert set(out["classify"]) <= {"neg", "pos"} and len(out["classify"]) == 2
    assert "".join(out["tag_words"]) == "我爱北京"
    n = len(load_model(paths["lm"]).encode("这本书很好看"))
    assert out["stream"] == [n, n, n]
    assert out["prediction"] == load_model(paths["clf"]).classify("很好").label
    assert r.stderr == ""
