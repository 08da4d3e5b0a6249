"""Catalogue cases: training defaults and what training shows (E296–E305): --min-steps, and the
smoothed training loss (``curve``, ``progress.loss_ema``) a last.pt carries for metrics.csv and loss.png."""

from __future__ import annotations

import math
from pathlib import Path

from cases_files import edited_run, put, resume_case
from catalogue import HELLO, Case, Ctx, hello

from rnnkit.train.config import TrainConfig
from rnnkit.train.trainer import train

_AT = HELLO.index("--epochs")
NO_EPOCHS = HELLO[:_AT] + HELLO[_AT + 2:]  # the tiny hello run, its epochs left to --min-steps


def min_steps_case(value: int, *epochs: str) -> Case:
    """``TrainConfig(min_steps=value)`` and ``rnnkit train … --min-steps value`` (with ``epochs``, e.g. --epochs 2)."""
    given = {"epochs": int(epochs[1])} if epochs else {}
    return Case(lambda c: train(TrainConfig(**{**hello(c.fresh("run")).to_dict(), "epochs": None, **given,
                                               "min_steps": value})),
                lambda c: ["train", *NO_EPOCHS, *epochs, "--out", c.fresh("run"), "--min-steps", str(value)])


def long_lm_config(c: Ctx, out: Path) -> TrainConfig:
    """An lm of one-token steps: ~700 steps in one epoch, so its curve logs every 2nd step."""
    return TrainConfig(task="lm", data=str(c.root / "long-lm.txt"), out=str(out), epochs=1, bptt=1, batch_size=1,
                       hidden=4, embed=2, patience=0, device="cpu", threads=1)


def long_lm_run(c: Ctx) -> Path:
    def make():
        c.file("long-lm.txt", ("我爱北京天安门，天安门上太阳升。\n" * 50).encode())
        return train(long_lm_config(c, c.root / "long-lm-run")).out
    return c.once("long-lm-run", make)


def odd_step(last: dict) -> None:
    """A row at step 3 between those of steps 2 and 4: a run logging every 2nd step never writes it."""
    last["curve"].insert(1, {**last["curve"][0], "step": 3})


def long_lm_case(name: str, edit) -> Case:
    def folder(c: Ctx) -> Path:
        return edited_run(c, name, edit, done=False, source=long_lm_run)
    return Case(lambda c: train(long_lm_config(c, folder(c)), resume=True),
                lambda c: ["train", "--task", "lm", "--data", c.root / "long-lm.txt", "--epochs", "1", "--bptt", "1",
                           "--batch-size", "1", "--hidden", "4", "--embed", "2", "--patience", "0", "--device", "cpu",
                           "--threads", "1", "--quiet", "--out", folder(c), "--resume"])


CASES: dict[str, Case] = {
    "E296": min_steps_case(-1),
    "E297": min_steps_case(10**13),
    "E298": min_steps_case(50, "--epochs", "2"),
    "E299": resume_case("no-curve", lambda last: last.pop("curve")),
    "E300": resume_case("curve-nan", put("curve", 1, "train_loss", math.nan)),
    "E301": resume_case("curve-order", lambda last: last["curve"].reverse()),
    "E302": resume_case("curve-gap", lambda last: last["curve"].pop(0)),
    "E303": resume_case("loss-ema", put("progress", "loss_ema", math.inf)),
    "E304": long_lm_case("curve-odd-step", odd_step),
}
