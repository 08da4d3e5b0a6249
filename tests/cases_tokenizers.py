"""Catalogue cases: tokenizer options that contradict each other or the data, and tokenizer metadata
that does not fit its kind, its segmenter or the file's format."""

from __future__ import annotations

import json
from dataclasses import replace

from catalogue import HELLO, Case, Ctx, hello

from rnnkit.runtime import WhitespaceTokenizer, load_model
from rnnkit.runtime.tokenizers import CharTokenizer
from rnnkit.train.config import TrainConfig
from rnnkit.train.trainer import train

ENGLISH_TAGS = b"The/DT cat/NN sat/VBD ./.\nA/DT dog/NN ran/VBD ./.\n"
WHITESPACE = WhitespaceTokenizer().to_config()


def english(c: Ctx):
    return c.file("en-tags.txt", ENGLISH_TAGS)


def tokenizer_model(c: Ctx, name: str, fmt: str | None = None, **changes) -> object:
    """``clf`` with its tokenizer replaced by a whitespace one changed by ``changes`` (and format ``fmt``)."""
    config = json.dumps({**WHITESPACE, **changes})
    return c.with_metadata(name, tokenizer=config, **({"format": fmt} if fmt else {"format": "2"}))


CASES: dict[str, Case] = {
    "E306": Case(lambda c: TrainConfig(task="lm", data="builtin:hello", out=str(c.fresh("run")), level="char",
                                       tokenizer="whitespace"),
                 lambda c: ["train", "--task", "lm", "--data", "builtin:hello", "--out", c.fresh("run"),
                            "--level", "char", "--tokenizer", "whitespace"]),
    "E307": Case(lambda c: train(replace(hello(c.fresh("run")), tokenizer="whitespace")),
                 lambda c: ["train", *HELLO, "--out", c.fresh("run"), "--tokenizer", "whitespace"]),
    "E308": Case(lambda c: train(TrainConfig(task="tag", data=str(english(c)), out=str(c.fresh("run")), hmm=False)),
                 lambda c: ["train", "--task", "tag", "--data", english(c), "--out", c.fresh("run"), "--no-hmm"]),
    "E309": Case(lambda c: load_model(tokenizer_model(c, "ws-format1", fmt="1")),
                 lambda c: ["inspect", tokenizer_model(c, "ws-format1", fmt="1")]),
    "E310": Case(lambda c: load_model(tokenizer_model(c, "ws-hmm", hmm=True)),
                 lambda c: ["inspect", tokenizer_model(c, "ws-hmm", hmm=True)]),
    "E311": Case(lambda c: load_model(tokenizer_model(c, "ws-spacy", segmenter="spacy")),
                 lambda c: ["inspect", tokenizer_model(c, "ws-spacy", segmenter="spacy")]),
    "E312": Case(lambda c: load_model(c.with_metadata("char-seg", tokenizer=json.dumps(
                     {**CharTokenizer().to_config(), "segmenter": "whitespace"}), format="2")),
                 lambda c: ["inspect", c.with_metadata("char-seg", tokenizer=json.dumps(
                     {**CharTokenizer().to_config(), "segmenter": "whitespace"}), format="2")]),
    "E313": Case(lambda c: TrainConfig(task="lm", data="builtin:hello", out=str(c.fresh("run")), tokenizer="spaces"),
                 lambda c: ["train", "--task", "lm", "--data", "builtin:hello", "--out", c.fresh("run"),
                            "--tokenizer", "spaces"]),
}
