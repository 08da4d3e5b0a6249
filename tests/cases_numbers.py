"""Catalogue cases: numbers that are not numbers, data that would not export (E160–E199)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from catalogue import HELLO, Case, Ctx, data_args, data_config, hello

from rnnkit.runtime import datafiles as data_module  # the readers training uses
from rnnkit.runtime.contract import KEYS, SCHEMAS
from rnnkit.runtime.sampling import Sampler
from rnnkit.train import trainer as trainer_module
from rnnkit.train.config import TrainConfig
from rnnkit.train.trainer import train


def options(c: Ctx, **changes) -> TrainConfig:
    """The tiny hello run with ``changes``: building it is what refuses a bad value."""
    return TrainConfig(**{**hello(c.fresh("run")).to_dict(), **changes})


def option_case(field: str, value, flag: str | None = None, text: str | None = None) -> Case:
    """``TrainConfig(field=value)`` and ``rnnkit train … --flag text``."""
    flag = flag or "--" + field.replace("_", "-")
    text = str(value) if text is None else text
    return Case(lambda c: train(options(c, **{field: value})),
                lambda c: ["train", *HELLO, "--out", c.fresh("run"), flag, text])


def tag_config(c: Ctx, data: Path) -> TrainConfig:
    return TrainConfig(task="tag", data=str(data), out=str(c.fresh("run")), epochs=1, hidden=8, embed=4,
                       device="cpu")


def tag_args(c: Ctx, data: Path) -> list:
    return ["train", "--task", "tag", "--data", data, "--out", c.fresh("run"), "--epochs", "1", "--hidden", "8",
            "--embed", "4", "--device", "cpu", "--quiet"]


def data_case(make, patch=None) -> Case:
    """A classify run on the file ``make(c)`` writes, through the library and the CLI."""
    return Case(lambda c: train(data_config(c, make(c))), lambda c: ["train", *data_args(c, make(c))], patch=patch)


def tag_case(make) -> Case:
    return Case(lambda c: train(tag_config(c, make(c))), lambda c: tag_args(c, make(c)))


def lm_case(source: str) -> Case:
    return Case(lambda c: train(TrainConfig(task="lm", data=source, out=str(c.fresh("run")), epochs=1, hidden=8,
                                            embed=4, device="cpu")),
                lambda c: ["train", "--task", "lm", "--data", source, "--out", c.fresh("run"), "--epochs", "1",
                           "--hidden", "8", "--embed", "4", "--device", "cpu", "--quiet"])


def text_file(name: str, content: str):
    """``make(c)``: ``content`` written once as ``name`` (lone surrogates kept, as JSON escapes would give)."""
    return lambda c: c.once(f"numbers-{name}", lambda: c.file(name, content.encode("utf-8", "surrogatepass")))


def many_labels(c: Ctx) -> Path:
    lines = "".join(f"label{i}\ttext {i}\n" for i in range(100_001))
    return c.once("numbers-many-labels", lambda: c.file("many-labels.tsv", lines.encode()))


def nan_loss(monkeypatch) -> None:
    """Every training step's loss is NaN (validation is untouched)."""
    real = trainer_module.batch_loss

    def poisoned(*args, **kwargs):
        loss, logits, state = real(*args, **kwargs)
        return loss * math.nan, logits, state

    monkeypatch.setattr(trainer_module, "batch_loss", poisoned)


def greedy_lm_args(c: Ctx, *extra: str) -> list:
    return ["generate", c.lm, "--prompt", "x", "--max-tokens", "3", *extra]


CASES: dict[str, Case] = {
    # training options that are not numbers, or not sizes a run can have
    "E160": option_case("lr", math.inf),
    "E161": option_case("lr", math.nan),
    "E162": option_case("lr", -1.0),
    "E163": option_case("clip", math.nan),
    "E164": option_case("clip", math.inf),
    "E165": option_case("weight_decay", math.nan),
    "E166": option_case("weight_decay", math.inf),
    "E167": option_case("dropout", math.nan),
    "E168": option_case("seed", -1),
    "E169": option_case("seed", 2**32),
    "E170": option_case("seed", 10**30),
    "E171": option_case("threads", 100_000),
    "E172": option_case("epochs", 10**7),
    "E173": option_case("hidden", 100_000),
    "E174": option_case("layers", 100_000),
    "E175": option_case("embed", 100_000),
    "E176": option_case("hidden", 60_000),
    "E177": option_case("valid_fraction", math.nan),
    "E178": option_case("max_vocab", 3_000_000),
    "E179": option_case("batch_size", 10**7),
    # training that diverges
    "E180": Case(lambda c: train(hello(c.fresh("run"))), lambda c: ["train", *HELLO, "--out", c.fresh("run")],
                 patch=nan_loss),
    "E181": Case(lambda c: train(options(c, lr=1e30, epochs=5)),
                 lambda c: ["train", *HELLO, "--out", c.fresh("run"), "--lr", "1e30", "--epochs", "5"]),
    # data that trains but would not export
    "E182": data_case(text_file("one-class.tsv", "pos\tgood\npos\tfine\npos\tgreat\n")),
    "E183": tag_case(text_file("one-tag.tag", "我/x 爱/x\n北京/x\n")),
    "E184": data_case(text_file("long-label.tsv", "pos\tgood\n" + "n" * 513 + "\tbad\n")),
    "E185": data_case(text_file("escape-label.tsv", "pos\tgood\n\x1b[31mneg\tbad\n")),
    "E186": data_case(text_file("bel-label.jsonl", '{"text": "good", "label": "pos"}\n'
                                                   '{"text": "bad", "label": "neg\\u0007"}\n')),
    "E187": data_case(text_file("surrogate-label.jsonl", '{"text": "good", "label": "pos"}\n'
                                                         '{"text": "bad", "label": "\\ud800"}\n')),
    "E188": data_case(text_file("surrogate-text.jsonl", '{"text": "good", "label": "pos"}\n'
                                                        '{"text": "b\\udc00d", "label": "neg"}\n')),
    "E189": tag_case(text_file("control-tag.tag", "我/n 爱/v\n北京/n\x07\n")),
    "E190": data_case(many_labels),
    "E191": Case(lambda c: train(hello(c.fresh("run"))), lambda c: ["train", *HELLO, "--out", c.fresh("run")],
                 patch=lambda mp: mp.setitem(SCHEMAS[KEYS.VOCAB], "maxItems", 6)),
    # data inputs that are not files, or are too large
    "E192": data_case(lambda c: c.fifo("pipe.tsv")),
    "E193": lm_case("/dev/zero"),
    "E194": data_case(text_file("long-line.tsv", "pos\tgood\nneg\t" + "x" * (1 << 20) + "\n")),
    "E195": data_case(text_file("big.tsv", "pos\tgood\nneg\tbad\n" * 20),
                      patch=lambda mp: mp.setattr(data_module, "MAX_DATA_BYTES", 100)),
    # sampling
    "E196": Case(lambda c: c.model("lm").generate("x", temperature=math.nan),
                 lambda c: greedy_lm_args(c, "--temperature", "nan")),
    "E197": Case(lambda c: c.model("lm").generate("x", seed=-1), lambda c: greedy_lm_args(c, "--seed", "-1")),
    "E198": Case(lambda c: c.model("lm").generate("x", top_p=math.nan), lambda c: greedy_lm_args(c, "--top-p", "nan")),
    "E199": Case(lambda c: Sampler(seed=0).choose(np.array([math.nan, 1.0, 2.0]), Sampler(seed=0).rng())),
}
