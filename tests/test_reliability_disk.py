"""Issue 6, disks and paths: a full disk, a folder that cannot be written, an existing target —
one clear WriteError, nothing half-written, the previous files intact, and nothing lost.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from click.testing import CliRunner  # noqa: E402
from conftest import unprivileged  # noqa: E402
from factory import tiny_checkpoint  # noqa: E402

from rnnkit.export import export_onnx  # noqa: E402
from rnnkit.runtime import WriteError, load_model  # noqa: E402
from rnnkit.runtime.cli import cli  # noqa: E402
from rnnkit.runtime.files import atomic_path  # noqa: E402
from rnnkit.train.checkpoint import load_checkpoint, save_checkpoint  # noqa: E402
from rnnkit.train.config import TrainConfig  # noqa: E402
from rnnkit.train.trainer import train  # noqa: E402


@pytest.fixture
def public():
    """A folder every user may enter (tmp_path's parents are private to root)."""
    folder = Path(tempfile.mkdtemp(prefix="rnnkit-public-"))
    folder.chmod(0o755)
    yield folder
    for path in folder.rglob("*"):
        with contextlib.suppress(OSError):
            path.chmod(0o755)
    shutil.rmtree(folder, ignore_errors=True)


def listing(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (hidden ones included) with its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def no_space(path: str = "") -> OSError:
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)


def classify_tsv(folder: Path) -> str:
    lines = [f"pos\t{t}好" if i % 2 == 0 else f"neg\t{t}差" for i, t in enumerate("我你他这那个书很是的了东西" * 2)]
    path = folder / "reviews.tsv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


def config(out: Path, data: str, **options) -> TrainConfig:
    return TrainConfig(**{"task": "classify", "data": data, "out": str(out), "epochs": 4, "batch_size": 4,
                          "save_every": 2, "hidden": 8, "embed": 4, "patience": 0, "device": "cpu", "seed": 2,
                          **options})


# -- checkpoints -------------------------------------------------------------------------------
def test_a_full_disk_mid_training_loses_nothing_and_resume_ends_at_the_same_model(tmp_path, monkeypatch):
    """E65: the 5th checkpoint write fails; every file on disk is whole, and --resume ends bit for bit
    where an uninterrupted run ends."""
    data = classify_tsv(tmp_path)
    whole = train(config(tmp_path / "whole", data))
    real_save, calls = torch.save, []

    def fills_up(obj, f, *args, **kwargs):
        calls.append(Path(f).name)
        if len(calls) == 5:
            real_save(obj, f, *args, **kwargs)  # most of the file is written, then the disk is full
            Path(f).write_bytes(Path(f).read_bytes()[:500])
            raise no_space(str(f))
        return real_save(obj, f, *args, **kwargs)

    out = tmp_path / "full"
    with monkeypatch.context() as patch:
        patch.setattr(torch, "save", fills_up)
        with pytest.raises(WriteError, match=r"could not write .*No space left on device; the previous file"):
            train(config(out, data))
    assert len(calls) == 5
    assert sorted(p.name for p in out.iterdir() if p.name.endswith(".tmp")) == []
    for name in ("checkpoint.pt", "last.pt"):
        if (out / name).exists():
            load_checkpoint(out, name=name)  # whole, whatever was being written when the disk filled
    resumed = train(config(out, data), resume=True)
    a, b = load_checkpoint(whole.out), load_checkpoint(out)
    for name in a["model"]:
        assert torch.equal(a["model"][name], b["model"][name]), name
    assert resumed.metrics["test"] == whole.metrics["test"]


def test_a_failed_rename_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = save_checkpoint({"task": "lm", "model": {"w": torch.ones(2)}}, tmp_path / "last.pt")
    before = path.read_bytes()

    def refused(src, dst):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(dst))

    monkeypatch.setattr(os, "replace", refused)
    with pytest.raises(WriteError, match="Permission denied; the previous file"):
        save_checkpoint({"task": "lm", "model": {"w": torch.zeros(2)}}, path)
    assert listing(tmp_path) == {"last.pt": before}


# -- training reports --------------------------------------------------------------------------
def test_a_full_disk_writing_metrics_keeps_the_last_complete_report(tmp_path, monkeypatch):
    """E67: metrics.json of epoch 2 cannot be written: the epoch-1 report stays, whole and readable."""
    real, writes = Path.write_text, []

    def fills_up(self, text, *args, **kwargs):
        if self.name.startswith(".metrics.json."):
            writes.append(self.name)
            if len(writes) == 2:
                real(self, text[: len(text) // 2], *args, **kwargs)
                raise no_space(str(self))
        return real(self, text, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", fills_up)
    out = tmp_path / "run"
    with pytest.raises(WriteError, match=r"metrics\.json: No space left on device"):
        train(config(out, classify_tsv(tmp_path)))
    report = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert [h["epoch"] for h in report["history"]] == [1]
    with open(out / "metrics.csv", newline="", encoding="utf-8") as f:  # whole: through epoch 1 (or 2)
        validated = [int(r["epoch"]) for r in csv.DictReader(f) if r["valid_loss"]]
    assert validated in ([1], [1, 2])
    assert [p.name for p in out.iterdir() if p.name.endswith(".tmp")] == []


# -- exported models ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ckpts(tmp_path_factory):
    root = tmp_path_factory.mktemp("ckpts")
    return tiny_checkpoint(root / "a", task="classify", seed=0), tiny_checkpoint(root / "b", task="classify", seed=1)


@pytest.fixture
def deployed(ckpts, tmp_path):
    """A folder with a good model at ``model.onnx`` (exported from checkpoint a)."""
    folder = tmp_path / "deploy"
    folder.mkdir()
    export_onnx(ckpts[0], folder / "model.onnx")
    return folder / "model.onnx"


def test_a_full_disk_during_export_keeps_the_deployed_model(ckpts, deployed, monkeypatch):
    """E66: the new model cannot be written: the old file is byte-identical, nothing else is left."""
    before = listing(deployed.parent)
    real = shutil.copyfile

    def fills_up(src, dst, **kwargs):
        if str(dst).endswith(".tmp"):
            Path(dst).write_bytes(Path(src).read_bytes()[: Path(src).stat().st_size // 3])
            raise no_space(str(dst))
        return real(src, dst, **kwargs)

    monkeypatch.setattr(shutil, "copyfile", fills_up)
    with pytest.raises(WriteError, match=r"could not write .*model\.onnx: No space left on device"):
        export_onnx(ckpts[1], deployed, overwrite=True)
    result = CliRunner().invoke(cli, ["export", str(ckpts[1]), "--out", str(deployed), "--force"])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    assert result.stderr.count("\n") == 1 and "No space left on device" in result.stderr
    assert listing(deployed.parent) == before  # no temp file, no work folder, the same bytes
    assert load_model(deployed).classify("好").label in ("neg", "pos")


def test_an_existing_target_needs_force(ckpts, deployed):
    """E62: without --force nothing is touched; with it the file is replaced in one step."""
    before = listing(deployed.parent)
    with pytest.raises(WriteError, match="already exists; pass --force"):
        export_onnx(ckpts[1], deployed)
    result = CliRunner().invoke(cli, ["export", str(ckpts[1]), "--out", str(deployed)])
    assert result.exit_code == 1 and result.stderr.startswith("Error: ") and "--force" in result.stderr
    assert listing(deployed.parent) == before
    result = CliRunner().invoke(cli, ["export", str(ckpts[1]), "--out", str(deployed), "--force"])
    assert result.exit_code == 0, result.output
    assert deployed.read_bytes() != before["model.onnx"]
    assert sorted(listing(deployed.parent)) == ["model.onnx"]


def test_a_target_below_a_file_is_a_write_error(ckpts, tmp_path):
    """E64: ``file.txt/sub/model.onnx`` cannot be made (a path test that also holds for root)."""
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(WriteError, match="cannot write to"):
        export_onnx(ckpts[0], tmp_path / "file.txt" / "sub" / "model.onnx")
    assert (tmp_path / "file.txt").read_text() == "x"


def test_a_folder_the_user_may_not_write(ckpts, public):
    """E68, E69: a read-only folder (a real one: as nobody when the tests run as root)."""
    shutil.copy(ckpts[0], public / "checkpoint.pt")
    (public / "checkpoint.pt").chmod(0o644)
    locked = public / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    with unprivileged():
        with pytest.raises(WriteError, match="Permission denied"):
            export_onnx(public / "checkpoint.pt", locked / "model.onnx")
        with pytest.raises(WriteError, match="Permission denied"):
            train(TrainConfig(task="tag", data="builtin:hello", out=str(locked / "run"), hidden=8, embed=4))
    assert list(locked.iterdir()) == []


def test_training_checks_its_folder_before_reading_data(tmp_path):
    """E61: a bad --out fails at once (a missing data file is not even looked at)."""
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(WriteError, match="cannot write to the --out folder"):
        train(TrainConfig(task="lm", data=str(tmp_path / "missing.txt"), out=str(tmp_path / "file.txt" / "run")))


# -- what a killed writer leaves -----------------------------------------------------------------
def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_orphaned_temporary_files_of_dead_writers_are_removed(tmp_path):
    """A SIGKILLed writer leaves ``.NAME.XXXXXXXX.PID.tmp``; the next write of NAME removes it, and only it."""
    dead = dead_pid()
    names = {
        f".model.onnx.abcd_123.{dead}.tmp": False,  # a dead writer of model.onnx: removed
        f".model.onnx.zzzzzzzz.{os.getpid()}.tmp": True,  # a live writer (this process): kept
        f".model.onnx.zzzzzzzz.{os.getppid()}.tmp": True,  # a live writer (another process): kept
        f".other.onnx.abcd_123.{dead}.tmp": True,  # another target's: not ours to touch
        f".model.onnx.abcd.{dead}.tmp": True,  # not the pattern atomic_path makes
        "model.onnx.bak": True,
    }
    for name in names:
        (tmp_path / name).write_bytes(b"half")
    with atomic_path(tmp_path / "model.onnx") as tmp:
        assert tmp.name.startswith(".model.onnx.") and tmp.name.endswith(f".{os.getpid()}.tmp")
        tmp.write_bytes(b"new")
    left = {p.name for p in tmp_path.iterdir()}
    assert left == {"model.onnx", *(name for name, kept in names.items() if kept)}
    assert (tmp_path / "model.onnx").read_bytes() == b"new"
