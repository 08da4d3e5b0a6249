"""Issue 6, interruption: ``rnnkit train`` and ``rnnkit export`` killed with SIGKILL at any moment
leave only whole files behind, and the work resumes to the same result.

tests/test_train_outputs.py already kills a run once and resumes it; here the run is killed five
times at random moments (with a snapshot written every step, so kills land inside writes), and
every file on disk is read after each kill.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
if not hasattr(signal, "SIGKILL"):
    pytest.skip("needs SIGKILL", allow_module_level=True)

from click.testing import CliRunner  # noqa: E402
from factory import tiny_checkpoint  # noqa: E402

from rnnkit.export import export_onnx  # noqa: E402
from rnnkit.runtime import load_model  # noqa: E402
from rnnkit.runtime.cli import cli  # noqa: E402
from rnnkit.train.checkpoint import load_checkpoint  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
TINY = ["--hidden", "16", "--embed", "8", "--patience", "0", "--device", "cpu", "--threads", "1", "--quiet"]


def classify_tsv(folder: Path) -> str:
    lines = [f"pos\t{t}好" if i % 2 == 0 else f"neg\t{t}差" for i, t in enumerate("我你他这那个书很是的了东西" * 2)]
    path = folder / "reviews.tsv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


def start(argv: list[str], *, stdout=subprocess.DEVNULL) -> subprocess.Popen:
    code = f"from rnnkit.runtime.cli import main; main({[str(a) for a in argv]!r})"
    return subprocess.Popen([sys.executable, "-c", code], stdout=stdout, stderr=subprocess.PIPE, cwd=ROOT)


def kill(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    err = proc.stderr.read()
    assert proc.returncode == -signal.SIGKILL, err.decode() if isinstance(err, bytes) else err


def whole_files(out: Path) -> dict[str, int]:
    """Read every output in ``out`` as its reader would; return each checkpoint's step."""
    steps = {}
    for path in sorted(out.glob("*.pt")):
        steps[path.name] = load_checkpoint(path)["progress"]["step"]  # raises if the file is not whole
    if (out / "metrics.json").exists():
        json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    return steps


@pytest.mark.slow
def test_training_killed_five_times_leaves_only_whole_files_and_resumes_bit_for_bit(tmp_path):
    data = classify_tsv(tmp_path)
    args = ["train", "--task", "classify", "--data", data, "--epochs", "100", "--batch-size", "4",
            "--dropout", "0.2", "--seed", "4", *TINY]
    snapshots = ["--save-every", "1"]  # a write every step: kills land inside writes
    out = tmp_path / "killed"
    seed = random.randrange(10**6)
    rng = random.Random(seed)
    history = []
    for kill_number in range(5):
        began = time.time_ns()
        proc = start([*args, *snapshots, "--out", out, *(["--resume"] if kill_number else [])])
        try:
            deadline = time.monotonic() + 90
            # wait until this process is training (it has rewritten last.pt), then a random moment more
            while proc.poll() is None and time.monotonic() < deadline:
                last = out / "last.pt"
                if last.exists() and last.stat().st_mtime_ns > began:
                    break
                time.sleep(0.005)
            time.sleep(rng.uniform(0.0, 0.4))
            assert proc.poll() is None, f"the run ended before kill {kill_number + 1} (seed {seed})"
        finally:
            kill(proc)
        steps = whole_files(out)
        history.append(steps)
        assert "last.pt" in steps, f"kill {kill_number + 1} (seed {seed}): {sorted(p.name for p in out.iterdir())}"
    progress = [h["last.pt"] for h in history]
    assert progress == sorted(progress) and progress[-1] > progress[0], (progress, seed)
    assert not load_checkpoint(out, name="last.pt")["progress"]["done"]

    resumed = CliRunner().invoke(cli, [*args, *snapshots, "--out", str(out), "--resume"])
    assert resumed.exit_code == 0, resumed.output
    # snapshots change nothing in the training itself: the reference run writes few, to be quick
    whole = CliRunner().invoke(cli, [*args, "--save-every", "1000", "--out", str(tmp_path / "whole")])
    assert whole.exit_code == 0, whole.output
    a, b = load_checkpoint(tmp_path / "whole"), load_checkpoint(out)
    for name in a["model"]:
        assert torch.equal(a["model"][name], b["model"][name]), (name, seed)
    assert [h["train_loss"] for h in a["history"]] == [h["train_loss"] for h in b["history"]]
    assert sorted(p.name for p in out.iterdir() if p.name.endswith(".tmp")) == [], "orphans of killed writers"


def test_a_run_killed_between_its_first_checkpoint_and_first_snapshot_resumes(tmp_path, monkeypatch):
    """The end of epoch 1 writes checkpoint.pt, then last.pt: a kill between them left a folder that
    could be neither resumed nor restarted. --resume now starts such a run over."""
    from rnnkit.train import trainer
    from rnnkit.train.config import TrainConfig

    cfg = TrainConfig(task="classify", data=classify_tsv(tmp_path), out=str(tmp_path / "run"), epochs=3,
                      batch_size=4, save_every=1000, hidden=8, embed=4, patience=0, device="cpu", seed=1)
    real = trainer._Run._save_last

    def killed(self):
        raise KeyboardInterrupt  # as if the process died here

    monkeypatch.setattr(trainer._Run, "_save_last", killed)
    with pytest.raises(KeyboardInterrupt):
        trainer.train(cfg)
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["checkpoint.pt", "metrics.csv", "metrics.json"]
    monkeypatch.setattr(trainer._Run, "_save_last", real)
    resumed = trainer.train(cfg, resume=True)
    whole = trainer.train(TrainConfig(**{**cfg.to_dict(), "out": str(tmp_path / "whole")}))
    a, b = load_checkpoint(whole.out), load_checkpoint(resumed.out)
    for name in a["model"]:
        assert torch.equal(a["model"][name], b["model"][name]), name


# -- export --------------------------------------------------------------------------------------
SLOW_WRITE = textwrap.dedent("""
    import os, shutil, sys, time
    real = shutil.copyfile

    def half_then_hang(src, dst, **kwargs):
        if not str(dst).endswith(".tmp"):
            return real(src, dst, **kwargs)
        data = open(src, "rb").read()
        with open(dst, "wb") as f:  # half the model is on disk when the kill comes
            f.write(data[: len(data) // 2])
            f.flush()
            os.fsync(f.fileno())
        print("HALF", len(data), flush=True)
        time.sleep(120)

    shutil.copyfile = half_then_hang
    from rnnkit.runtime.cli import main
    main(sys.argv[1:])
""")


def test_export_killed_mid_write_leaves_the_deployed_model_intact(tmp_path):
    old = tiny_checkpoint(tmp_path / "old", task="classify", seed=0)
    new = tiny_checkpoint(tmp_path / "new", task="classify", seed=1)
    deploy = tmp_path / "deploy"
    deploy.mkdir()
    target = deploy / "model.onnx"
    export_onnx(old, target)
    before = target.read_bytes()
    label = load_model(target).classify("这本书很好看").scores

    proc = subprocess.Popen([sys.executable, "-c", SLOW_WRITE, "export", str(new), "--out", str(target), "--force"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        line = proc.stdout.readline()  # blocks until the write is half done (or the process ends)
        assert line.startswith("HALF"), proc.stderr.read()
    finally:
        kill(proc)
    size = int(line.split()[1])

    assert target.read_bytes() == before
    assert load_model(target).classify("这本书很好看").scores == label
    temps = [p for p in deploy.iterdir() if p.is_file() and p.name != "model.onnx"]
    assert [p.name for p in temps] == [f".model.onnx.{p.name.split('.')[3]}.{proc.pid}.tmp" for p in temps]
    assert len(temps) == 1 and temps[0].stat().st_size == size // 2  # the kill landed inside the write
    # export's work folder (.rnnkit-export-*) is also left by a SIGKILL; every leftover is hidden
    assert all(p.name.startswith(".") for p in deploy.iterdir() if p.name != "model.onnx")

    export_onnx(new, target, overwrite=True)  # the next export replaces the model and removes the orphan
    assert target.read_bytes() != before
    assert load_model(target).classify("这本书很好看").scores != label
    assert [p.name for p in deploy.iterdir() if p.is_file()] == ["model.onnx"]
