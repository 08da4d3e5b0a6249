"""What a worker restarted by the elastic launcher continues from (train/runstart.restarted)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from factory import tiny_checkpoint  # noqa: E402

from rnnkit.train.checkpoint import LAST_NAME, load_checkpoint, save_checkpoint  # noqa: E402
from rnnkit.train.config import TrainConfig  # noqa: E402
from rnnkit.train.runstart import restarted  # noqa: E402


@pytest.fixture
def restarted_worker(monkeypatch):
    for name, value in {"RANK": "0", "WORLD_SIZE": "2", "TORCHELASTIC_RESTART_COUNT": "1",
                        "TORCHELASTIC_RUN_ID": "this-launch"}.items():
        monkeypatch.setenv(name, value)


def _last(out, launch: str | None) -> None:
    payload = load_checkpoint(tiny_checkpoint(out, task="tag").parent)
    payload = {k: v for k, v in payload.items() if k not in ("rnnkit_checkpoint", "rnnkit", "torch", "created")}
    if launch is not None:
        payload["launch"] = launch
    save_checkpoint(payload, out / LAST_NAME)


@pytest.mark.parametrize("launch", [None, "an-earlier-launch"])
def test_force_starts_over_when_last_pt_is_the_replaced_runs(tmp_path, restarted_worker, launch):
    # --force keeps the old run's files until the new run writes its first: a worker restarted
    # before that must not resume the run it was asked to replace
    _last(tmp_path, launch)
    config = TrainConfig(task="tag", data="builtin:hello", out=str(tmp_path), force=True, nproc_per_node=2,
                         batch_size=2)
    resume, after = restarted(config, False)
    assert (resume, after.force) == (False, True)


def test_force_resumes_what_this_launch_wrote(tmp_path, restarted_worker):
    _last(tmp_path, "this-launch")
    config = TrainConfig(task="tag", data="builtin:hello", out=str(tmp_path), force=True, nproc_per_node=2,
                         batch_size=2)
    resume, after = restarted(config, False)
    assert (resume, after.force) == (True, False)


def test_without_force_a_restart_resumes_last_pt(tmp_path, restarted_worker):
    _last(tmp_path, None)
    config = TrainConfig(task="tag", data="builtin:hello", out=str(tmp_path), nproc_per_node=2, batch_size=2)
    assert restarted(config, False)[0] is True
