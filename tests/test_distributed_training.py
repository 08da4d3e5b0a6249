"""2 workers on CPU (gloo) end with the weights 1 worker ends with, for the same global batch."""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")

from workers import spawn_workers  # noqa: E402

from rnnkit.train.checkpoint import load_checkpoint  # noqa: E402
from rnnkit.train.config import TrainConfig  # noqa: E402
from rnnkit.train.trainer import train  # noqa: E402

pytestmark = pytest.mark.slow

TASKS = {"lm": {"task": "lm", "data": "builtin:reviews", "bptt": 8},
         "classify": {"task": "classify", "data": "builtin:reviews"},
         "tag": {"task": "tag", "data": "builtin:segmentation"}}


def config(out, task: str, **extra) -> TrainConfig:
    return TrainConfig(**{"out": str(out), "limit": 40, "max_steps": 10, "batch_size": 8, "hidden": 16, "embed": 8,
                          "threads": 1, "device": "cpu", "seed": 3, "dropout": 0.0, **TASKS[task], **extra})


@pytest.mark.parametrize("task", sorted(TASKS))
def test_two_workers_end_with_the_weights_of_one(tmp_path, task):
    one = train(config(tmp_path / "one", task))
    record = tmp_path / "writes.txt"
    spawn_workers(2, config(tmp_path / "two", task).to_dict(), record=record)
    a, b = load_checkpoint(tmp_path / "one"), load_checkpoint(tmp_path / "two")
    for name in a["model"]:  # the same optimisation, up to the order floats are summed in
        torch.testing.assert_close(a["model"][name], b["model"][name], rtol=0, atol=1e-5)
    assert [h["step"] for h in a["history"]] == [h["step"] for h in b["history"]]
    for x, y in zip(a["history"], b["history"]):
        assert x["train_loss"] == pytest.approx(y["train_loss"], rel=1e-5)
        assert x["valid_loss"] == pytest.approx(y["valid_loss"], rel=1e-5)
    assert one.metrics["world_size"] == 1 and b["metrics"]["world_size"] == 2
    report = json.loads((tmp_path / "two" / "metrics.json").read_text(encoding="utf-8"))
    assert report["world_size"] == 2 and report["device"] == "cpu" and report["final"]["world_size"] == 2
    writers = {line.split()[0] for line in record.read_text(encoding="utf-8").splitlines()}
    assert writers == {"0"}, "only rank 0 writes checkpoints and reports"
    assert "last.pt" in {p.name for p in (tmp_path / "two").iterdir()}


def test_a_worker_refuses_a_batch_its_workers_cannot_share(tmp_path, monkeypatch):
    from rnnkit.runtime.errors import ConfigError

    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "3")
    with pytest.raises(ConfigError, match="must divide by the 3 workers"):
        train(config(tmp_path / "run", "classify"))
