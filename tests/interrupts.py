"""Ctrl-C in the middle of a training run, as a user would press it, for the resume tests."""

from __future__ import annotations

from rnnkit.train import trainer


class Interrupted(KeyboardInterrupt):
    pass


def interrupt_after(monkeypatch, steps: int) -> None:
    """Make the trainer's step raise Ctrl-C once ``steps`` steps have run (as a user would)."""
    step = trainer._Run._step
    done = {"n": 0}

    def interrupted_step(self, batch):
        if done["n"] == steps:
            raise Interrupted
        done["n"] += 1
        return step(self, batch)

    monkeypatch.setattr(trainer._Run, "_step", interrupted_step)
