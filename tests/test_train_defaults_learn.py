"""Defaults that learn (--min-steps: small data repeats its epochs) and what a run shows of its training
(metrics.csv by step, with the smoothed training loss; loss.png with the validation metric)."""

from __future__ import annotations

import csv
import random
import time
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from click.testing import CliRunner  # noqa: E402
from interrupts import Interrupted, interrupt_after  # noqa: E402

from rnnkit.runtime.errors import ConfigError  # noqa: E402
from rnnkit.train import trainer  # noqa: E402
from rnnkit.train.checkpoint import load_checkpoint, model_from_checkpoint  # noqa: E402
from rnnkit.train.cli import train as train_command  # noqa: E402
from rnnkit.train.config import DEFAULT_EPOCHS, TrainConfig  # noqa: E402
from rnnkit.train.report import CURVE_ROWS, curve_every, loss_figure  # noqa: E402
from rnnkit.train.trainer import train  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
TINY = {"hidden": 8, "embed": 4, "device": "cpu", "threads": 1}
TIMING = ("seconds", "tokens_per_second")  # the only columns two runs may differ in


def hello(out: Path, **options) -> TrainConfig:
    return TrainConfig(task="tag", data="builtin:hello", out=str(out), **{**TINY, **options})


def intents_tsv(folder: Path, n: int = 200) -> Path:
    """Two intents of one's own, ~200 lines: booking a flight vs asking for the weather, varied words."""
    rng = random.Random(0)
    cities = ["paris", "london", "tokyo", "berlin", "madrid", "rome", "oslo", "lisbon", "dublin", "vienna",
              "prague", "cairo", "lima", "quito", "seoul", "delhi", "boston", "denver", "austin", "miami"]
    days = ["today", "tomorrow", "on monday", "this weekend", "next week", "tonight", "on friday", ""]
    book = ["book a flight to {c} {d}", "i need a plane ticket to {c}", "find me flights to {c} {d}",
            "can you get me a seat on a flight to {c}", "reserve a ticket to {c} {d} please",
            "i want to fly to {c} {d}", "show cheap flights to {c}", "get me on the next plane to {c}"]
    weather = ["what's the weather in {c} {d}", "will it rain in {c} {d}", "how hot is it in {c}",
               "forecast for {c} {d}", "is it sunny in {c} {d}", "tell me the temperature in {c}",
               "do i need an umbrella in {c} {d}", "how cold will it be in {c} {d}"]
    lines = []
    for i in range(n):
        label, templates = ("book_flight", book) if i % 2 else ("weather", weather)
        text = rng.choice(templates).format(c=rng.choice(cities), d=rng.choice(days))
        lines.append(f"{label}\t{' '.join(text.split())}\n")
    path = folder / "intents.tsv"
    path.write_text("".join(lines), encoding="utf-8")
    return path


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


# -- defaults that learn ---------------------------------------------------------------------------
def test_hello_with_default_options_learns_ohlol(tmp_path):
    started = time.perf_counter()
    result = CliRunner().invoke(train_command, ["--task", "tag", "--data", "builtin:hello", "--out",
                                                str(tmp_path / "run"), "--seed", "0", "--quiet"])
    seconds = time.perf_counter() - started
    assert result.exit_code == 0, result.output
    ckpt = load_checkpoint(tmp_path / "run")
    model, tokenizer, vocab = model_from_checkpoint(ckpt)
    k = ckpt["train_config"]["lookahead"]  # the tagger reads k tokens (here <pad>) past each one
    ids = torch.tensor([vocab.encode(tokenizer.tokenize("hello")) + [vocab.pad_id] * k])
    logits, _ = model(ids)  # (1, 5 + k, 3)
    assert "".join(ckpt["labels"][i] for i in logits.argmax(-1)[0, k:].tolist()) == "ohlol"
    # one example is one step an epoch: the 300 steps of --min-steps are 300 epochs, in seconds
    assert ckpt["metrics"]["best_epoch"] == len(ckpt["history"]) == 300
    assert seconds < 60, f"the toy at its defaults took {seconds:.0f}s"


@pytest.mark.slow
def test_two_intents_of_200_lines_learn_at_the_defaults(tmp_path):
    result = train(TrainConfig(task="classify", data=str(intents_tsv(tmp_path)), out=str(tmp_path / "run")))
    assert result.split["sizes"] == {"train": 160, "valid": 20, "test": 20}
    assert result.history[-1]["step"] == 300  # 5 steps an epoch, 60 epochs
    assert result.metrics["valid"]["accuracy"] >= 0.95  # 0.8 at 10 epochs, the default before --min-steps


@pytest.mark.parametrize("steps_per_epoch,epochs", [(1, 300), (7, 43), (30, DEFAULT_EPOCHS),
                                                     (10_000, DEFAULT_EPOCHS)])
def test_small_data_repeats_its_epochs_up_to_min_steps(steps_per_epoch, epochs):
    config = TrainConfig(task="tag", data="builtin:hello", out="x")
    assert config.epochs_for(steps_per_epoch) == epochs  # a minimum below one epoch changes nothing
    assert TrainConfig(task="tag", data="builtin:hello", out="x", min_steps=0).epochs_for(steps_per_epoch) == 10


def test_explicit_epochs_are_exact_and_max_steps_caps_every_run(tmp_path):
    assert [h["step"] for h in train(hello(tmp_path / "one", epochs=1)).history] == [1]
    assert len(train(hello(tmp_path / "floor", min_steps=25)).history) == 25
    capped = train(hello(tmp_path / "capped", max_steps=7))  # 300 epochs asked by --min-steps, 7 steps allowed
    assert [h["step"] for h in capped.history][-1] == 7 and len(capped.history) == 7
    with pytest.raises(ConfigError, match="--epochs 1 is exact and --min-steps 50 only raises"):
        hello(tmp_path / "both", epochs=1, min_steps=50)


@pytest.mark.parametrize("options,epochs", [({"min_steps": 12}, 12), ({"epochs": 20}, 2)])
def test_early_stopping_waits_for_min_steps(tmp_path, monkeypatch, options, epochs):
    monkeypatch.setattr(trainer._Run, "_evaluate", lambda self, data: {"loss": 1.0, "accuracy": 0.5, "count": 5})
    result = train(hello(tmp_path, patience=1, **options))  # never better after epoch 1
    assert len(result.history) == epochs


# -- what a run shows ------------------------------------------------------------------------------
def test_metrics_csv_has_a_row_a_step_and_the_named_metric_at_each_validation(tmp_path):
    result = train(hello(tmp_path, min_steps=20))
    rows = read_csv(tmp_path / "metrics.csv")
    assert list(rows[0])[:2] == ["step", "epoch"] and "valid_accuracy" in rows[0]
    assert [int(r["step"]) for r in rows] == list(range(1, 21))
    assert [float(r["valid_accuracy"]) for r in rows] == [h["valid_metric"] for h in result.history]
    # the debiased moving average of one step is that step's loss (the mean of epoch 1, one step)
    assert float(rows[0]["train_loss"]) == pytest.approx(result.history[0]["train_loss"], rel=1e-9)
    assert [float(r["train_loss"]) for r in rows] == [c["train_loss"] for c in result.curve]


def test_a_long_run_logs_every_kth_step_and_every_validation(tmp_path):
    text = tmp_path / "long.txt"
    text.write_text("我爱北京天安门，天安门上太阳升。\n" * 25, encoding="utf-8")
    config = TrainConfig(task="lm", data=str(text), out=str(tmp_path / "run"), epochs=2, bptt=1, batch_size=1,
                         patience=0, **TINY)
    result = train(config)
    planned = result.history[-1]["step"]
    every = curve_every(planned)
    assert every > 1
    rows = read_csv(tmp_path / "run" / "metrics.csv")
    assert len(rows) <= CURVE_ROWS + 2
    assert all(int(r["step"]) % every == 0 or r["valid_loss"] for r in rows)
    assert [int(r["step"]) for r in rows if r["valid_loss"]] == [h["step"] for h in result.history]
    # lm: the metric is the loss, so its perplexity is the column beside it, not the loss twice
    assert "valid_perplexity" in rows[0] and list(rows[0]).count("valid_loss") == 1


def test_a_one_epoch_run_draws_its_loss_as_a_line(tmp_path):
    data = intents_tsv(tmp_path, 60)
    result = train(TrainConfig(task="classify", data=str(data), out=str(tmp_path / "run"), epochs=1, batch_size=8,
                               **TINY))
    assert (tmp_path / "run" / "loss.png").read_bytes().startswith(PNG_MAGIC)
    fig = loss_figure(result.history, result.curve, "accuracy", "one epoch")
    loss_axis, metric_axis = fig.axes
    trained, validated = loss_axis.get_lines()
    assert list(trained.get_xdata()) == list(range(1, 7))  # 48 training lines: 6 steps, a line of 6 points
    assert list(validated.get_xdata()) == [6] and validated.get_marker() == "o"
    assert metric_axis.get_ylabel() == "accuracy"
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["train (smoothed)", "validation",
                                                                  "validation accuracy"]


@pytest.mark.parametrize("options,stop", [({"min_steps": 40}, 24),  # tiny epochs: files every 2nd epoch end
                                          ({"epochs": 3, "save_every": 4, "batch_size": 8, "data": "tsv"}, 10)])
def test_a_resumed_run_writes_the_same_metrics_csv(tmp_path, monkeypatch, options, stop):
    if options.get("data") == "tsv":
        options = {**options, "task": "classify", "data": str(intents_tsv(tmp_path, 40)), "lookahead": None}
    whole = train(TrainConfig(**{**hello(tmp_path / "a").to_dict(), **options}))
    config = TrainConfig(**{**hello(tmp_path / "b").to_dict(), **options})
    with monkeypatch.context() as patch:
        interrupt_after(patch, stop)
        with pytest.raises(Interrupted):
            train(config)
    assert load_checkpoint(tmp_path / "b", name="last.pt")["progress"]["step"] < stop
    resumed = train(config, resume=True)
    a, b = (read_csv(tmp_path / run / "metrics.csv") for run in "ab")
    assert [{k: v for k, v in r.items() if k not in TIMING} for r in a] == \
        [{k: v for k, v in r.items() if k not in TIMING} for r in b]
    assert [{k: v for k, v in r.items() if k != "seconds"} for r in resumed.curve] == \
        [{k: v for k, v in r.items() if k != "seconds"} for r in whole.curve]
