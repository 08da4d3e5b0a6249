"""A run resumes under another number of workers (2 → 1, 1 → 2) and, under the same, bit for bit."""

from __future__ import annotations

import shutil

import pytest

torch = pytest.importorskip("torch")

from workers import spawn_workers  # noqa: E402

from rnnkit.train import trainer  # noqa: E402
from rnnkit.train.checkpoint import load_checkpoint  # noqa: E402
from rnnkit.train.config import TrainConfig  # noqa: E402

pytestmark = pytest.mark.slow
STOP = 8  # the run stops before this step; its last.pt is step 5's (mid-epoch: the lm carries its rows)


def config(out) -> TrainConfig:
    return TrainConfig(task="lm", data="builtin:reviews", out=str(out), limit=40, max_steps=12, batch_size=8, bptt=8,
                       hidden=16, embed=8, save_every=5, threads=1, device="cpu", seed=5)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """An uninterrupted 2-worker run, and a 2-worker run stopped before step STOP."""
    root = tmp_path_factory.mktemp("runs")
    spawn_workers(2, config(root / "whole").to_dict())
    spawn_workers(2, config(root / "stopped").to_dict(), stop_at=STOP)
    assert load_checkpoint(root / "stopped", name="last.pt")["progress"]["step"] == 5
    return root


def weights(out):
    return load_checkpoint(out)["model"]


def test_same_workers_resume_bit_for_bit(runs, tmp_path):
    shutil.copytree(runs / "stopped", tmp_path / "run")
    spawn_workers(2, config(tmp_path / "run").to_dict(), resume=True)
    a, b = weights(runs / "whole"), weights(tmp_path / "run")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_two_workers_resume_on_one(runs, tmp_path):
    shutil.copytree(runs / "stopped", tmp_path / "run")
    last = load_checkpoint(tmp_path / "run", name="last.pt")
    assert len(last["rng"]["ranks"]) == 2 and last["carry"].shape[1] == 8  # every rank's state, all 8 rows
    result = trainer.train(config(tmp_path / "run"), resume=True)
    assert result.metrics["world_size"] == 1 and result.history[-1]["step"] == 12
    a, b = weights(runs / "whole"), weights(tmp_path / "run")
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=1e-5)


def test_one_worker_resumes_on_two(runs, tmp_path, monkeypatch):
    step = trainer._Run._step

    def stopping(self, batch):
        if self.pos["step"] + 1 >= STOP:
            raise KeyboardInterrupt
        return step(self, batch)

    with monkeypatch.context() as patch:
        patch.setattr(trainer._Run, "_step", stopping)
        with pytest.raises(KeyboardInterrupt):
            trainer.train(config(tmp_path / "run"))
    spawn_workers(2, config(tmp_path / "run").to_dict(), resume=True)
    best = load_checkpoint(tmp_path / "run")
    assert best["metrics"]["world_size"] == 2
    a, b = weights(runs / "whole"), best["model"]
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=1e-5)
