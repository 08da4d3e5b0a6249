"""Pretrained word vectors (``--embeddings``): the three formats, matching, coverage, freezing, resume, the CLI.

The bad inputs of docs/ERRORS.md ("Pretrained word vectors") run in test_reliability.py through
tests/cases_embeddings.py; here their messages are read more closely, without training.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from click.testing import CliRunner  # noqa: E402
from factory import tiny_checkpoint  # noqa: E402

from rnnkit.runtime import datafiles  # noqa: E402
from rnnkit.runtime.errors import CheckpointError, ConfigError, DataError  # noqa: E402
from rnnkit.runtime.tokenizers import CharTokenizer  # noqa: E402
from rnnkit.runtime.vocab import Vocabulary  # noqa: E402
from rnnkit.train import trainer as trainer_module  # noqa: E402
from rnnkit.train.checkpoint import load_checkpoint  # noqa: E402
from rnnkit.train.cli import train as train_command  # noqa: E402
from rnnkit.train.config import TrainConfig  # noqa: E402
from rnnkit.train.embeddings import probe_embeddings, read_embeddings  # noqa: E402
from rnnkit.train.model import ModelConfig, RNNModel  # noqa: E402
from rnnkit.train.trainer import train  # noqa: E402

GOOD, BAD = ["good", "great", "fine", "lovely", "superb"], ["bad", "awful", "poor", "boring", "dull"]
NOUNS = ["movie", "film", "plot", "cast", "story", "music"]
# The file's words: most of the data's, two it never uses; "dull", "cast", "story", "music" have none.
WORDS = ["the", "was", *GOOD, *BAD[:4], *NOUNS[:3], "unused", "other"]
DIM = 6
FORMATS = {"word2vec text": "vectors.vec", "GloVe text": "glove.6d.txt", "word2vec binary": "vectors.bin"}


def reviews(path: Path) -> Path:
    """A classify TSV of 40 English lines: word level, whitespace-cut."""
    rng = random.Random(0)
    lines = []
    for i in range(40):
        label, words = ("pos", GOOD) if i % 2 == 0 else ("neg", BAD)
        lines.append(f"{label}\tthe {rng.choice(NOUNS)} was {rng.choice(words)}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def vectors_file(path: Path, fmt: str, words: list[str], vectors: np.ndarray) -> Path:
    """``words`` and their ``vectors`` (n, dim) written in ``fmt``; text values round-trip float32 exactly."""
    rows = [f"{w} {' '.join(repr(float(x)) for x in v)}\n" for w, v in zip(words, vectors)]
    if fmt == "GloVe text":
        path.write_text("".join(rows), encoding="utf-8")
    elif fmt == "word2vec text":
        path.write_text(f"{len(words)} {vectors.shape[1]}\n" + "".join(rows), encoding="utf-8")
    else:
        records = b"".join(w.encode() + b" " + v.astype("<f4").tobytes() + b"\n" for w, v in zip(words, vectors))
        path.write_bytes(f"{len(words)} {vectors.shape[1]}\n".encode() + records)
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("embeddings")
    table = np.random.default_rng(1).normal(size=(len(WORDS), DIM)).astype(np.float32)
    made = {fmt: vectors_file(root / name, fmt, WORDS, table) for fmt, name in FORMATS.items()}
    return {"root": root, "data": reviews(root / "reviews.tsv"), "table": dict(zip(WORDS, table)), **made}


def config(files, out: Path, **changes) -> TrainConfig:
    options = {"task": "classify", "data": str(files["data"]), "out": str(out), "level": "word", "embed": DIM,
               "hidden": 8, "epochs": 1, "max_steps": 2, "batch_size": 8, "patience": 0, "device": "cpu",
               "threads": 1, "embeddings": str(files["GloVe text"]), **changes}
    return TrainConfig(**options)


def covered_rows(ckpt: dict, table: dict[str, np.ndarray]) -> tuple[list[int], np.ndarray]:
    ids = [i for i, token in enumerate(ckpt["vocab"]) if i >= 4 and token in table]
    return ids, np.stack([table[ckpt["vocab"][i]] for i in ids])


# -- reading ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", FORMATS)
def test_each_format_is_told_by_its_content_and_read_exactly(files, fmt):
    header = probe_embeddings(files[fmt])
    assert (header.format, header.dim) == (fmt, DIM)
    assert header.count == (None if fmt == "GloVe text" else len(WORDS))
    vocab = Vocabulary.build([["the", "movie", "dull", "superb", "nothing"]])
    got = read_embeddings(files[fmt], vocab, CharTokenizer())
    assert [vocab.tokens[i] for i in got.ids] == sorted(["the", "movie", "superb"], key=vocab.id)
    for i, row in zip(got.ids, got.vectors):
        assert np.array_equal(row, files["table"][vocab.tokens[i]])
    assert (got.covered, got.vocab, got.file_words) == (3, 5, len(WORDS))
    assert got.describe() == f"{fmt}, {DIM} dimensions; 3 of 5 vocabulary tokens (60.0%) found"


def test_a_binary_file_without_line_ends_and_a_text_file_with_crlf_and_a_bom(tmp_path):
    table = np.arange(8, dtype=np.float32).reshape(2, 4) / 8
    binary = tmp_path / "packed.bin"
    binary.write_bytes(b"2 4\n" + b"".join(w + b" " + v.astype("<f4").tobytes() for w, v in zip((b"a", b"b"), table)))
    crlf = tmp_path / "crlf.vec"
    crlf.write_bytes(b"\xef\xbb\xbf2 4\r\na 0 0.125 0.25 0.375\r\nb 0.5 0.625 0.75 0.875\r\n")
    vocab = Vocabulary.build([["a", "b"]])
    for path, fmt in ((binary, "word2vec binary"), (crlf, "word2vec text")):
        got = read_embeddings(path, vocab, CharTokenizer())
        assert got.format == fmt and got.covered == 2
        assert np.array_equal(got.vectors[np.argsort([vocab.tokens[i] for i in got.ids])], table)


def test_file_words_are_normalised_like_text_and_the_first_of_a_clash_wins(tmp_path):
    path = tmp_path / "cased.txt"
    path.write_text("Ｆｉｌｍ 1 1\nfilm 2 2\nFILM 3 3\nplot 4 4\n", encoding="utf-8")  # fullwidth: NFKC
    vocab = Vocabulary.build([["film", "plot"]])
    got = read_embeddings(path, vocab, CharTokenizer(lowercase=True))
    rows = {vocab.tokens[i]: list(v) for i, v in zip(got.ids, got.vectors)}
    assert rows == {"film": [1, 1], "plot": [4, 4]}
    got = read_embeddings(path, vocab, CharTokenizer())  # NFKC alone: "Ｆｉｌｍ" is "Film", not "film"
    assert {vocab.tokens[i]: list(v) for i, v in zip(got.ids, got.vectors)} == {"film": [2, 2], "plot": [4, 4]}


def test_char_level_vectors_are_per_token_too(tmp_path):
    path = tmp_path / "chars.txt"
    path.write_text("好 1 2\n差 3 4\n很好 5 6\n", encoding="utf-8")
    got = read_embeddings(path, Vocabulary.build([list("很好差不")]), CharTokenizer())
    assert got.covered == 2 and got.vocab == 4


def test_words_outside_the_vocabulary_are_not_parsed_but_every_row_is_shaped(tmp_path):
    path = tmp_path / "rest.txt"
    path.write_text("film 1 2\nzzz nan x\nplot 3 4\n", encoding="utf-8")
    vocab = Vocabulary.build([["film", "plot"]])
    assert read_embeddings(path, vocab, CharTokenizer()).covered == 2
    path.write_text("film 1 2\nzzz 1\n", encoding="utf-8")
    with pytest.raises(DataError, match="line 2 has 1 value after its word, line 1 has 2"):
        read_embeddings(path, vocab, CharTokenizer())


def f4(*values: float) -> bytes:
    return np.array(values, dtype="<f4").tobytes()


@pytest.mark.parametrize("data,says", [
    (b"", "is empty"),
    (b"\n\n", "line 1 is blank"),
    (b"0 4\n", "holds no vectors (its header on line 1 says 0 words)"),
    (b"3 0\n", "its header (line 1) says 0 dimensions"),
    (b"3 70000\n", "gives vectors of 70,000 dimensions, more than the 65,536 a model holds"),
    (b"film\nplot\n", "line 1 holds a word but no values"),
    (b"3 2\nfilm 1 2\nplot 1 2\n", "its header (line 1) says 3 words, the file holds 2"),
    (b"1 2\nfilm 1 2\nplot 1 2\n", "line 3 is a word beyond the 1 its header (line 1) says"),
    (b"film 1 2\nplot 1 2 3\n", "line 2 has 3 values after its word, line 1 has 2"),
    (b"2 2\nfilm 1 2\nplot 1\n", "line 3 has 1 value after its word, the header says 2"),
    (b"film 1 0x10\n", "line 1: value 2 ('0x10') is not a number"),
    (b"film 1 nan\n", "line 1: value 2 ('nan') is not a finite float32 number"),
    (b"film 1 1e39\n", "line 1: value 2 ('1e39') is not a finite float32 number"),
    (b"film 1 2\n\xffplot 1 2\n", "line 2 is not UTF-8 (byte 0xff at 0)"),
    (b"film 1 2\nplot 3 4\nfilm 5 6\n", "line 3 repeats the word 'film' of line 1: two vectors for one word"),
    (b"other 1 2\nwords 1 2\n", "no vocabulary token was found among its 2 words (GloVe text)"),
    (b"2 2\nfilm " + f4(1, 2) + b"\nplot " + f4(1, 2)[:5], "word2vec binary record 2 ('plot') is cut short: 5 of"),
    (b"3 2\nfilm " + f4(1, 2) + b"\nplot " + f4(1, 2), "the file ends before word2vec binary record 3, but its "
                                                      "header says 3 words"),
    (b"2 2\nfilm " + f4(1, 2) + b"\npl", "record 2 is cut short (the file ends inside its word)"),
    (b"1 2\nfilm " + f4(1, 2) + b"\nplot " + f4(1, 2), "holds more than the 1 words its header says"),
    (b"1 2\nfilm " + f4(1, np.inf), "word2vec binary record 1: value 2 is inf, not a finite number"),
    (b"1 2\nfi\xfflm " + f4(1, 2), "word2vec binary record 1 is not UTF-8"),
    (b"film " + b"1 " * (1 << 21) + b"\n", "line 1 is longer than 4,194,304 bytes"),
])
def test_a_bad_vectors_file_is_one_line_naming_it_and_where(tmp_path, data, says):
    path = tmp_path / "bad.vec"
    path.write_bytes(data)
    with pytest.raises(DataError) as info:
        read_embeddings(path, Vocabulary.build([["film", "plot"]]), CharTokenizer())
    message = str(info.value)
    assert message.startswith(f"{path}: ") and says in message and "\n" not in message, message


def test_what_is_not_a_readable_regular_file(tmp_path, monkeypatch):
    with pytest.raises(DataError, match="file does not exist; check the --embeddings path"):
        probe_embeddings(tmp_path / "gone.txt")
    with pytest.raises(DataError, match="is a directory, not a vectors file"):
        probe_embeddings(tmp_path)
    with pytest.raises(DataError, match="is not a regular file"):
        probe_embeddings("/dev/zero")
    big = tmp_path / "big.txt"
    big.write_text("film 1 2\n" * 20, encoding="utf-8")
    monkeypatch.setattr(datafiles, "MAX_DATA_BYTES", 100)  # the data files' cap is the vectors' too
    with pytest.raises(DataError, match="the file is 180 bytes, more than the 100 rnnkit reads"):
        probe_embeddings(big)


# -- options ---------------------------------------------------------------------------------------
def test_options_that_cannot_go_together(files, tmp_path):
    with pytest.raises(ConfigError, match="--freeze-embeddings needs --embeddings"):
        config(files, tmp_path, embeddings=None, freeze_embeddings=True)
    with pytest.raises(ConfigError, match="would freeze the output layer too"):
        config(files, tmp_path, task="lm", tie_weights=True, hidden=DIM, freeze_embeddings=True)
    with pytest.raises(ConfigError, match="empty path"):
        config(files, tmp_path, embeddings="")
    with pytest.raises(TypeError, match="embeddings must be a path"):
        config(files, tmp_path, embeddings=3)
    assert config(files, tmp_path, embeddings=files["GloVe text"]).embeddings == str(files["GloVe text"])


def test_vectors_of_another_size_are_refused_before_the_data_is_read(files, tmp_path):
    cfg = config(files, tmp_path / "run", embed=8, data=str(tmp_path / "no-data.tsv"))
    with pytest.raises(ConfigError, match=f"glove.6d.txt has {DIM} dimensions, embed is 8: pass embed={DIM}$"):
        train(cfg)


# -- training --------------------------------------------------------------------------------------
def test_frozen_vectors_are_the_file_s_exactly_after_training(files, tmp_path):
    result = train(config(files, tmp_path / "run", freeze_embeddings=True, weight_decay=0.5))
    best, last = load_checkpoint(result.out), load_checkpoint(result.out, name="last.pt")
    weight = best["model"]["embedding.weight"].numpy()  # (V, E)
    ids, rows = covered_rows(best, files["table"])
    assert np.array_equal(weight[ids], rows)
    torch.manual_seed(0)  # the rest, specials included, keep the normal init (the run's seed)
    init = RNNModel(ModelConfig(**best["model_config"])).embedding.weight.detach().numpy()
    rest = [i for i in range(len(weight)) if i not in ids]
    assert np.array_equal(weight[rest], init[rest])
    assert len(last["optimizer"]["param_groups"][0]["params"]) == len(best["model"]) - 1  # not in AdamW
    vocab = len(best["vocab"]) - 4
    record = {"path": str(files["GloVe text"]), "format": "GloVe text", "dim": DIM, "covered": len(ids),
              "vocab": vocab, "coverage": round(len(ids) / vocab, 6), "file_words": len(WORDS), "frozen": True}
    assert result.embeddings == record
    assert json.loads((result.out / "metrics.json").read_text(encoding="utf-8"))["embeddings"] == record
    assert (len(ids), vocab) == (14, 18)  # the training split's 18 words, 4 of them without a vector


@pytest.mark.parametrize("fmt", ["word2vec text", "word2vec binary"])
def test_trained_vectors_start_as_the_file_s(files, tmp_path, fmt, monkeypatch):
    seen = []
    real = trainer_module._Run._step

    def first_step(self, batch):
        if not seen:
            seen.append(self.model.embedding.weight.detach().clone().numpy())
        return real(self, batch)

    monkeypatch.setattr(trainer_module._Run, "_step", first_step)
    result = train(config(files, tmp_path / "run", embeddings=str(files[fmt])))
    best = load_checkpoint(result.out)
    ids, rows = covered_rows(best, files["table"])
    assert np.array_equal(seen[0][ids], rows)
    assert not np.array_equal(best["model"]["embedding.weight"].numpy()[ids], rows)  # and then they learn
    assert best["embeddings"]["format"] == fmt and not best["embeddings"]["frozen"]


def test_an_interrupted_run_resumes_without_the_file(files, tmp_path, monkeypatch):
    vectors = tmp_path / "moved.txt"
    vectors.write_bytes(files["GloVe text"].read_bytes())
    cfg = config(files, tmp_path / "run", embeddings=str(vectors), freeze_embeddings=True, epochs=2, max_steps=None,
                 save_every=1)
    real = trainer_module._Run._step

    def interrupted(self, batch):
        if self.pos["step"] == 5:
            raise KeyboardInterrupt
        return real(self, batch)

    monkeypatch.setattr(trainer_module._Run, "_step", interrupted)
    with pytest.raises(KeyboardInterrupt):
        train(cfg)
    monkeypatch.setattr(trainer_module._Run, "_step", real)
    vectors.unlink()  # the weights are in last.pt: the file is not read again
    result = train(cfg, resume=True)
    best = load_checkpoint(result.out)
    ids, rows = covered_rows(best, files["table"])
    assert best["progress"]["step"] == 8 and np.array_equal(best["model"]["embedding.weight"].numpy()[ids], rows)
    assert json.loads((result.out / "metrics.json").read_text(encoding="utf-8"))["embeddings"]["covered"] == len(ids)
    with pytest.raises(ConfigError, match=r"these differ: .*freeze_embeddings"):
        train(TrainConfig(**{**cfg.to_dict(), "freeze_embeddings": False}), resume=True)


@pytest.mark.parametrize("record,says", [({"covered": [1, 2]}, "embeddings is not a record of plain values"),
                                         ("GloVe", "embeddings is of type str, not dict or NoneType")])
def test_an_edited_record_in_a_checkpoint_is_refused(tmp_path, record, says):
    path = tiny_checkpoint(tmp_path)
    ckpt = torch.load(path, weights_only=True)
    torch.save({**ckpt, "embeddings": record}, path)
    with pytest.raises(CheckpointError, match=f"is damaged or was edited: {says}"):
        load_checkpoint(path)


# -- the command line ------------------------------------------------------------------------------
CLI = ["--task", "classify", "--level", "word", "--hidden", "8", "--epochs", "1", "--max-steps", "1",
       "--patience", "0", "--device", "cpu", "--threads", "1", "--quiet"]


def test_the_command_takes_the_size_from_the_file_unless_given(files, tmp_path):
    run = CliRunner().invoke(train_command, [*CLI, "--data", str(files["data"]), "--out", str(tmp_path / "run"),
                                             "--embeddings", str(files["word2vec binary"]), "--freeze-embeddings"])
    assert run.exit_code == 0, run.output
    assert "embeddings: word2vec binary, 6 dimensions; 14 of 18 vocabulary tokens (77.8%) found" in run.output
    assert load_checkpoint(tmp_path / "run")["model_config"]["embed"] == DIM
    wrong = CliRunner().invoke(train_command, [*CLI, "--data", str(files["data"]), "--out", str(tmp_path / "other"),
                                               "--embeddings", str(files["word2vec binary"]), "--embed", "8"])
    assert wrong.exit_code == 2
    assert f"vectors.bin has {DIM} dimensions, --embed is 8: pass --embed {DIM}" in wrong.output
    assert not (tmp_path / "other").exists()
