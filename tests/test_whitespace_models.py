"""English models whose words are cut on whitespace, end to end: train → export → runtime."""

from __future__ import annotations

import random

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from click.testing import CliRunner  # noqa: E402

from rnnkit.export import export_onnx  # noqa: E402
from rnnkit.runtime import ConfigError, WhitespaceTokenizer, WordTokenizer, load_model  # noqa: E402
from rnnkit.runtime.cli import cli  # noqa: E402
from rnnkit.train.config import TrainConfig  # noqa: E402
from rnnkit.train.data import load_data  # noqa: E402
from rnnkit.train.tokenizing import choose_tokenizer  # noqa: E402
from rnnkit.train.trainer import train  # noqa: E402

NOUNS = ["cat", "dog", "man", "car", "book", "city", "bird", "child"]
VERBS = ["sees", "likes", "finds", "takes", "wants", "reads"]
ADJS = ["big", "small", "red", "old", "new"]


def english_pos_lines(n: int, seed: int = 0) -> list[str]:
    """``word/TAG`` lines of simple English sentences."""
    rng = random.Random(seed)
    lines = []
    for _ in range(n):
        words = [(rng.choice(["The", "A", "This"]), "DT")]
        if rng.random() < 0.5:
            words.append((rng.choice(ADJS), "JJ"))
        words += [(rng.choice(NOUNS), "NN"), (rng.choice(VERBS), "VBZ"), (rng.choice(["the", "a"]), "DT"),
                  (rng.choice(NOUNS), "NN"), (".", ".")]
        lines.append(" ".join(f"{w}/{t}" for w, t in words))
    return lines


def english_sentences(n: int, seed: int = 0) -> list[str]:
    return [" ".join(w.rsplit("/", 1)[0] for w in line.split()) for line in english_pos_lines(n, seed)]


def write(path, lines):
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def small(**kwargs) -> TrainConfig:
    return TrainConfig(hidden=24, embed=12, batch_size=16, patience=0, seed=0, **kwargs)


@pytest.fixture(scope="module")
def pos_model(tmp_path_factory):
    folder = tmp_path_factory.mktemp("en-pos")
    data = write(folder / "pos.txt", english_pos_lines(160))
    result = train(small(task="tag", data=str(data), out=str(folder / "run"), max_steps=120, lr=1e-2),
                   progress=False)
    export_onnx(result.checkpoint, folder / "pos.onnx")
    return folder / "pos.onnx"


@pytest.fixture(scope="module")
def lm_model(tmp_path_factory):
    folder = tmp_path_factory.mktemp("en-lm")
    data = write(folder / "text.txt", english_sentences(200))
    result = train(small(task="lm", data=str(data), out=str(folder / "run"), level="word", max_steps=80, lr=1e-2),
                   progress=False)
    export_onnx(result.checkpoint, folder / "lm.onnx")
    return folder / "lm.onnx"


# -- which tokenizer training picks -----------------------------------------------------------------
def picked(tmp_path, lines, task, **options):
    data = write(tmp_path / ("data.tsv" if task == "classify" else "data.txt"), lines)
    config = TrainConfig(task=task, data=str(data), out=str(tmp_path / "run"), **options)
    return choose_tokenizer(config, load_data(str(data), task))


def test_english_tagged_words_are_cut_on_whitespace_and_chinese_ones_by_jieba(tmp_path):
    tok = picked(tmp_path, english_pos_lines(20), "tag")
    assert isinstance(tok, WhitespaceTokenizer) and not tok.keep_whitespace
    chinese = ["我/r 爱/v 北京/ns 。/w", "今天/t 天气/n 很/d 好/a"]
    tok = picked(tmp_path, chinese, "tag")
    assert isinstance(tok, WordTokenizer) and not tok.keep_whitespace  # tagged lines never hold a space
    assert isinstance(picked(tmp_path, chinese, "tag", tokenizer="whitespace"), WhitespaceTokenizer)


def test_word_level_text_is_cut_by_its_language_and_the_option_overrides(tmp_path):
    english = [f"{'pos' if i % 2 else 'neg'}\t{s}" for i, s in enumerate(english_sentences(20))]
    tok = picked(tmp_path, english, "classify", level="word")
    assert isinstance(tok, WhitespaceTokenizer) and not tok.keep_whitespace
    chinese = ["pos\t这本书很好看", "neg\t质量太差了 不推荐"]
    tok = picked(tmp_path, chinese, "classify", level="word")
    assert isinstance(tok, WordTokenizer) and tok.keep_whitespace  # today's jieba models are unchanged
    assert isinstance(picked(tmp_path, english, "classify", tokenizer="jieba"), WordTokenizer)
    assert picked(tmp_path, english, "classify", tokenizer="whitespace", keep_whitespace=True).keep_whitespace
    assert picked(tmp_path, english, "classify").kind == "char"  # no --level, no --tokenizer: characters


def test_options_that_contradict_the_data_or_each_other_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="use it with --level word"):
        TrainConfig(task="lm", data="x", out="y", level="char", tokenizer="whitespace")
    with pytest.raises(ConfigError, match="unknown tokenizer 'spacy'"):
        TrainConfig(task="lm", data="x", out="y", tokenizer="spacy")
    with pytest.raises(ConfigError, match="is tagged per char; drop --tokenizer whitespace"):
        picked(tmp_path, ["h/o e/h l/l"], "tag", tokenizer="whitespace")
    with pytest.raises(ConfigError, match="--no-hmm is for words cut by jieba"):
        picked(tmp_path, english_pos_lines(5), "tag", hmm=False)


def test_the_cli_takes_tokenizer_and_whitespace_options(tmp_path):
    data = write(tmp_path / "pos.txt", english_pos_lines(12))
    out = tmp_path / "run"
    result = CliRunner().invoke(cli, ["train", "--task", "tag", "--data", str(data), "--out", str(out),
                                       "--tokenizer", "whitespace", "--keep-whitespace", "--max-steps", "2",
                                       "--hidden", "8", "--embed", "4", "--quiet"])
    assert result.exit_code == 0, result.output
    ckpt = torch.load(out / "checkpoint.pt", weights_only=False)
    assert ckpt["tokenizer"]["segmenter"] == "whitespace" and ckpt["tokenizer"]["keep_whitespace"] is True
    bad = CliRunner().invoke(cli, ["train", "--task", "tag", "--data", str(data), "--out", str(tmp_path / "r2"),
                                    "--tokenizer", "spaces"])
    assert bad.exit_code == 2 and "Invalid value for '--tokenizer'" in bad.output


# -- a tagger of English words ----------------------------------------------------------------------
def test_an_english_tagger_tags_words_not_spaces(pos_model):
    model = load_model(pos_model)
    assert model.metadata.format == 2 and model.tokenizer == WhitespaceTokenizer()
    text = "The  big dog\tsees a  cat ."
    result = model.tag(text)
    assert [text[a:b] for a, b in result.spans] == [token for token, _ in result] == text.split()
    assert result == model.tag(text.replace("  ", " ").replace("\t", " "))
    assert [tag for _, tag in result][:4] == ["DT", "JJ", "NN", "VBZ"]
    shown = CliRunner().invoke(cli, ["inspect", str(pos_model)])
    assert "tokenizer:     word (cut on whitespace), normalize NFKC, case kept, whitespace dropped" in shown.output


def test_an_english_tag_stream_fed_in_pieces_tags_as_the_whole_text(pos_model):
    model = load_model(pos_model)
    text = "A red bird reads the book . The old man likes a car ."
    whole = model.tag(text)
    rng = random.Random(3)
    for _ in range(5):
        stream, pairs, fed = model.tag_stream(), [], 0
        while fed < len(text):
            n = rng.randint(1, 7)
            pairs += stream.feed(text[fed : fed + n])
            fed += n
        pairs += stream.end()
        assert pairs == whole


# -- an lm of English words -------------------------------------------------------------------------
def test_an_english_word_lm_writes_words_with_one_space_between(lm_model):
    model = load_model(lm_model)
    assert model.tokenizer == WhitespaceTokenizer()
    words = set(model.vocab.tokens)
    text = "".join(model.generate("", max_tokens=30, seed=1))
    assert text and "  " not in text and not text.startswith(" ")
    assert set(text.split(" ")) <= words
    after = "".join(model.generate("The big", max_tokens=5, seed=1))
    assert after.startswith(" ") and after[1:2] != " "  # a new word after the prompt's last one
    after_space = "".join(model.generate("The big ", max_tokens=5, seed=1))
    assert after_space == after[1:]  # the prompt's space is the separator: same words, no second space


def test_an_english_word_stream_holds_back_the_open_word(lm_model):
    model = load_model(lm_model)
    stream = model.stream()
    assert stream.feed("The bi") is not None  # "The" is closed: consumed; "bi" may become "big"
    assert stream.pending == "bi"
    stream.feed("g dog")
    assert stream.pending == "dog"
    logits = stream.flush()
    whole = model.stream()
    whole.feed("The big dog")
    np.testing.assert_array_equal(logits, whole.flush())
    assert stream.consumed == whole.consumed == 3  # three words after the start (<bos>)
