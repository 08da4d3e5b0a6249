"""Issue 11, outputs: one writer per output (with real processes), only regular files replaced,
--force starts a run over, and names as long as the file system allows work.

The catalogue rows E150–E159 (docs/ERRORS.md) run each refusal once through the library and
the CLI; here the same behaviour is followed further: across processes, after a SIGKILL, and
on what is left on disk.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
if not hasattr(signal, "SIGKILL") or os.name != "posix":
    pytest.skip("needs POSIX: flock, FIFOs, SIGKILL", allow_module_level=True)

from catalogue import HELLO, hello  # noqa: E402
from click.testing import CliRunner  # noqa: E402
from factory import tiny_checkpoint  # noqa: E402

from rnnkit.export import export_onnx  # noqa: E402
from rnnkit.runtime import RnnkitError, TrainingError, WriteError, load_model  # noqa: E402
from rnnkit.runtime.cli import cli  # noqa: E402
from rnnkit.runtime.errors import ConfigError  # noqa: E402
from rnnkit.runtime.files import _temp_prefix, atomic_path, exclusive_lock  # noqa: E402
from rnnkit.train import config as config_module  # noqa: E402
from rnnkit.train import trainer as trainer_module  # noqa: E402
from rnnkit.train.checkpoint import load_checkpoint, save_checkpoint  # noqa: E402
from rnnkit.train.outfolder import LOCK_NAME, OUTPUT_NAMES  # noqa: E402
from rnnkit.train.trainer import train  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def listing(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@contextlib.contextmanager
def running(code: str, *argv, ready: str):
    """A Python process running ``code`` with ``argv``, once it has printed ``ready``; SIGKILLed after."""
    proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), *map(str, argv)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        line = proc.stdout.readline()  # blocks until the process is at work (or ends)
        assert line.strip() == ready, proc.stderr.read()
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.wait()


# A run that holds its folder (the lock is taken before the data is read) and stops there.
TRAINING = """
    import sys, time
    from rnnkit.train import trainer
    def hang(self):
        print("TRAINING", flush=True)
        time.sleep(120)
    trainer._Run.run = hang
    from rnnkit.runtime.cli import main
    main(sys.argv[1:])
"""
# An export that stops inside its write, its temporary file created and locked.
EXPORTING = """
    import shutil, sys, time
    def hang(src, dst, **kwargs):
        print("EXPORTING", flush=True)
        time.sleep(120)
    shutil.copyfile = hang
    from rnnkit.runtime.cli import main
    main(sys.argv[1:])
"""
LOCKING = """
    import sys
    from rnnkit.runtime.errors import WriteError
    from rnnkit.runtime.files import exclusive_lock
    try:
        with exclusive_lock(sys.argv[1], "busy {pid}"):
            print("GOT", flush=True)
            sys.stdin.read()  # held until the test closes stdin
    except WriteError as e:
        print("BUSY", e, flush=True)
"""


# -- one writer per output -------------------------------------------------------------------------
def test_a_second_run_into_a_folder_in_use_is_refused_and_a_sigkill_frees_it(tmp_path):
    out = tmp_path / "run"
    with running(TRAINING, "train", *HELLO, "--out", out, ready="TRAINING") as first:
        before = listing(out)
        assert (out / LOCK_NAME).read_text().strip() == str(first.pid)
        for extra in ([], ["--force"], ["--resume"]):
            result = CliRunner().invoke(cli, ["train", *HELLO, "--out", str(out), *extra])
            assert result.exit_code == 1, result.output
            assert f"is in use by another training run (pid {first.pid})" in result.output
        with pytest.raises(WriteError, match=f"pid {first.pid}"):
            train(hello(out))
        assert listing(out) == before  # the refused runs wrote nothing, not even a lock of their own
        first.send_signal(signal.SIGKILL)
        first.wait()
    assert (out / LOCK_NAME).exists()  # a killed holder leaves the file, but the OS released its lock
    result = train(hello(out))
    assert result.checkpoint.is_file() and not (out / LOCK_NAME).exists()


def test_of_processes_that_race_for_a_lock_exactly_one_gets_it(tmp_path):
    lock = tmp_path / "x.lock"
    procs = [subprocess.Popen([sys.executable, "-c", textwrap.dedent(LOCKING), str(lock)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT) for _ in range(4)]
    try:
        answers = [p.stdout.readline().split() for p in procs]  # the holder holds until every one answered
    finally:
        for p in procs:
            p.stdin.close()
            p.wait()
    assert sorted(a[0] for a in answers) == ["BUSY", "BUSY", "BUSY", "GOT"], answers
    holder = procs[[a[0] for a in answers].index("GOT")]
    assert all(a[1:] == ["busy", str(holder.pid)] for a in answers if a[0] == "BUSY")
    assert not lock.exists()  # the holder removed it on the way out


def test_a_lock_is_held_against_this_process_too_and_released_after(tmp_path):
    lock = tmp_path / "x.lock"
    with exclusive_lock(lock, "busy {pid}"), pytest.raises(WriteError, match=f"busy {os.getpid()}"), \
            exclusive_lock(lock, "busy {pid}"):
        pass
    with exclusive_lock(lock, "busy {pid}"):  # released: taken again at once
        assert lock.read_text().strip() == str(os.getpid())


def test_a_folder_named_with_braces_is_named_as_it_is_when_in_use(tmp_path):
    out = tmp_path / "runs" / "{a}{pid}}{"  # a text that str.format would choke on, and {pid} itself
    out.mkdir(parents=True)
    says = f"{out} is in use by another training run (pid {os.getpid()}); wait for it to end or choose another --out"
    with exclusive_lock(out / LOCK_NAME, "held"):
        with pytest.raises(WriteError) as info:
            train(hello(out))
        assert str(info.value) == says
        result = CliRunner().invoke(cli, ["train", *HELLO, "--out", str(out)])
        assert result.exit_code == 1 and says in result.output, result.output
        with pytest.raises(WriteError, match=re.escape(f"{{a}} {{}} busy {os.getpid()}")), \
                exclusive_lock(out / LOCK_NAME, "{a} {} busy {pid}"):
            pass


@pytest.mark.parametrize("plant", ["symlink", "hardlink", "fifo"])
def test_a_planted_lock_file_is_refused_and_what_it_names_is_untouched(tmp_path, plant):
    out = tmp_path / "run"
    out.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    lock = out / LOCK_NAME
    {"symlink": lambda: lock.symlink_to(victim), "hardlink": lambda: os.link(victim, lock),
     "fifo": lambda: os.mkfifo(lock)}[plant]()
    with pytest.raises(WriteError, match="lock file"):
        train(hello(out))
    assert victim.read_text() == "keep me"
    assert not (out / "checkpoint.pt").exists()


def test_a_second_export_to_a_target_being_written_is_refused(tmp_path):
    ckpt = tiny_checkpoint(tmp_path / "ckpt")
    deploy = tmp_path / "deploy"
    deploy.mkdir()
    target = deploy / "model.onnx"
    with running(EXPORTING, "export", ckpt, "--out", target, ready="EXPORTING") as first:
        with pytest.raises(WriteError, match=rf"is being written by another process \(pid {first.pid}\)"):
            export_onnx(ckpt, target, overwrite=True)
        result = CliRunner().invoke(cli, ["export", str(ckpt), "--out", str(target), "--force"])
        assert result.exit_code == 1 and f"(pid {first.pid})" in result.output, result.output
        export_onnx(ckpt, deploy / "other.onnx")  # another target in the same folder is another writer's
        first.send_signal(signal.SIGKILL)
        first.wait()
    export_onnx(ckpt, target)  # the killed writer's lock died with it; its temporary file is removed
    assert sorted(p.name for p in deploy.iterdir()) == ["model.onnx", "other.onnx"]
    load_model(target)


# -- only regular files are replaced -------------------------------------------------------------
def _fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


def _socket(path: Path, keep: list) -> Path:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(path))
    keep.append(sock)
    return path


def _link(path: Path, to: Path) -> Path:
    path.symlink_to(to)
    return path


@pytest.mark.parametrize("kind,says", [
    ("fifo", "is a named pipe (FIFO)"), ("socket", "is a socket"), ("dev-null", "is a character device"),
    ("folder", "is a folder"), ("link-to-fifo", "is a named pipe (FIFO)"), ("link-to-folder", "is a folder"),
    ("link-to-null", "is a character device"),
])
def test_atomic_path_replaces_only_regular_files(tmp_path, kind, says):
    keep: list = []
    fifo = _fifo(tmp_path / "fifo")
    (tmp_path / "folder").mkdir()
    target = {"fifo": lambda: fifo, "socket": lambda: _socket(tmp_path / "s.sock", keep),
              "dev-null": lambda: Path("/dev/null"), "folder": lambda: tmp_path / "folder",
              "link-to-fifo": lambda: _link(tmp_path / "l1", fifo),
              "link-to-folder": lambda: _link(tmp_path / "l2", tmp_path / "folder"),
              "link-to-null": lambda: _link(tmp_path / "l3", Path("/dev/null"))}[kind]()
    before = os.lstat(target)
    entered = []
    with pytest.raises(WriteError, match=re.escape(f"{target} {says}")), atomic_path(target, overwrite=True):
        entered.append(True)
    assert entered == []  # refused before any work
    after = os.lstat(target)
    assert (after.st_mode, after.st_ino, after.st_rdev) == (before.st_mode, before.st_ino, before.st_rdev)
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []
    for sock in keep:
        sock.close()


def test_dev_null_stays_a_device_whatever_writes_to_it(tmp_path):
    ckpt = tiny_checkpoint(tmp_path / "ckpt")
    before = os.stat("/dev/null")
    result = CliRunner().invoke(cli, ["export", str(ckpt), "--out", "/dev/null", "--force"])
    assert result.exit_code == 1 and "is a character device, not a regular file" in result.output
    with pytest.raises(WriteError, match="character device"):
        save_checkpoint(load_checkpoint(ckpt), "/dev/null")
    with pytest.raises(WriteError, match="not a folder"):
        train(hello(Path("/dev/null")))
    after = os.stat("/dev/null")
    assert stat.S_ISCHR(after.st_mode) and after.st_rdev == before.st_rdev and after.st_ino == before.st_ino


def test_a_link_to_a_regular_file_is_replaced_and_its_target_kept(tmp_path):
    real = tmp_path / "real.txt"
    real.write_text("old")
    link = _link(tmp_path / "link.txt", real)
    with atomic_path(link) as tmp:
        tmp.write_text("new")
    assert not link.is_symlink() and link.read_text() == "new" and real.read_text() == "old"


@pytest.mark.parametrize("name", OUTPUT_NAMES)
def test_a_run_refuses_a_folder_where_an_output_is_a_pipe_before_reading_data(tmp_path, name):
    out = tmp_path / "run"
    out.mkdir()
    _fifo(out / name)
    config = dataclasses.replace(hello(out), data=str(tmp_path / "missing.txt"))  # never read
    for force in (False, True):
        with pytest.raises(WriteError, match=rf"{name} is a named pipe \(FIFO\), not a regular file"):
            train(dataclasses.replace(config, force=force))
    assert stat.S_ISFIFO(os.lstat(out / name).st_mode) and sorted(os.listdir(out)) == [name]


# -- --force ------------------------------------------------------------------------------------------
def test_force_starts_over_removing_only_what_a_run_writes(tmp_path):
    out = tmp_path / "run"
    train(dataclasses.replace(hello(out, epochs=3), seed=5))
    elsewhere = tmp_path / "kept.pt"
    shutil.copy(out / "checkpoint.pt", elsewhere)
    (out / "checkpoint.pt").unlink()
    _link(out / "checkpoint.pt", elsewhere)  # a link is removed, never what it points to
    (out / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="--force to start over"):
        train(hello(out))

    result = CliRunner().invoke(cli, ["train", *HELLO, "--out", str(out), "--force"])
    assert result.exit_code == 0, result.output
    fresh = train(hello(tmp_path / "fresh"))
    a, b = load_checkpoint(out), load_checkpoint(fresh.out)
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    assert len(a["history"]) == 2 and load_checkpoint(out, name="last.pt")["progress"]["epoch"] == 2
    assert (out / "notes.txt").read_text() == "mine" and elsewhere.is_file()
    assert not (out / "checkpoint.pt").is_symlink()
    assert sorted(p.name for p in out.iterdir()) == sorted([*(p.name for p in fresh.out.iterdir()), "notes.txt"])


def _nan_loss(batch_loss):
    def nan(*args, **kwargs):
        loss, logits, state = batch_loss(*args, **kwargs)
        return loss * math.nan, logits, state
    return nan


@pytest.mark.parametrize("breaks", ["missing data", "a model too large", "a loss NaN at the first step"])
def test_force_with_a_run_that_cannot_start_leaves_the_previous_run_as_it_was(tmp_path, monkeypatch, breaks):
    out = tmp_path / "run"
    train(hello(out))
    before = listing(out)
    assert {"checkpoint.pt", "last.pt"} <= set(before)
    config = dataclasses.replace(hello(out, epochs=3), force=True)
    if breaks == "missing data":
        config = dataclasses.replace(config, data=str(tmp_path / "missing.txt"))
        result = CliRunner().invoke(cli, ["train", *HELLO, "--out", str(out), "--force", "--data", config.data])
        assert result.exit_code == 1 and "missing.txt: file does not exist" in result.output, result.output
        assert listing(out) == before
    elif breaks == "a model too large":
        monkeypatch.setattr(config_module, "MAX_PARAMETERS", 10)
    else:
        monkeypatch.setattr(trainer_module, "batch_loss", _nan_loss(trainer_module.batch_loss))
    with pytest.raises(RnnkitError) as info:
        train(config)
    kind = {"missing data": "DataError", "a model too large": "ConfigError"}.get(breaks, "TrainingError")
    assert type(info.value).__name__ == kind, info.value
    assert not isinstance(info.value, TrainingError) or "no checkpoint was written" in str(info.value)
    assert listing(out) == before  # nothing removed: the old run still loads and resumes
    assert load_checkpoint(out, name="last.pt")["progress"]["done"]


def test_force_into_a_new_folder_is_a_plain_run_and_force_with_resume_a_usage_error(tmp_path):
    assert train(dataclasses.replace(hello(tmp_path / "new"), force=True)).checkpoint.is_file()
    result = CliRunner().invoke(cli, ["train", *HELLO, "--out", str(tmp_path / "new"), "--resume", "--force"])
    assert result.exit_code == 2 and "pass one of them" in result.output


# -- long names ---------------------------------------------------------------------------------------
def test_a_250_character_export_target_works_and_its_temporary_name_fits(tmp_path, monkeypatch):
    ckpt = tiny_checkpoint(tmp_path / "ckpt")
    deploy = tmp_path / "deploy"
    deploy.mkdir()
    target = deploy / ("m" * 245 + ".onnx")
    limit = os.pathconf(deploy, "PC_NAME_MAX")
    seen: list[str] = []
    copy = shutil.copyfile

    def recording(src, dst, **kwargs):
        seen.append(Path(dst).name)
        return copy(src, dst, **kwargs)

    monkeypatch.setattr(shutil, "copyfile", recording)
    export_onnx(ckpt, target)
    assert [len(os.fsencode(n)) <= limit for n in seen] == [True] and seen[0].endswith(f".{os.getpid()}.tmp")
    assert [p.name for p in deploy.iterdir()] == [target.name]
    load_model(target)
    result = CliRunner().invoke(cli, ["export", str(ckpt), "--out", str(target), "--force"])
    assert result.exit_code == 0, result.output


def test_orphans_of_a_shortened_temporary_name_are_still_removed(tmp_path):
    name = "x" * 250
    other = "x" * 249 + "y"  # shares the shortened start: its own hash keeps its orphans apart
    dead = dead_pid()
    mine, theirs = (f"{_temp_prefix(tmp_path, n)}abcd_123.{dead}.tmp" for n in (name, other))
    assert mine != theirs and all(len(n) <= os.pathconf(tmp_path, "PC_NAME_MAX") for n in (mine, theirs))
    for orphan in (mine, theirs):
        (tmp_path / orphan).write_bytes(b"half")
    with atomic_path(tmp_path / name) as tmp:
        tmp.write_bytes(b"whole")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([name, theirs])


def test_a_250_character_out_folder_trains_checkpoints_and_exports(tmp_path):
    out = tmp_path / ("r" * 250)
    result = train(hello(out))
    model = out / ("m" * 250)
    export_onnx(out, model)
    assert result.checkpoint.is_file() and load_model(model).task == "tag"
    save_checkpoint(load_checkpoint(out), out / ("c" * 250))
    assert load_checkpoint(out / ("c" * 250))["task"] == "tag"


@pytest.mark.parametrize("name,fits", [("a" * 255, True), ("a" * 256, False), ("长" * 85, True), ("长" * 86, False)])
def test_names_are_measured_in_bytes_against_the_folders_limit(tmp_path, name, fits):
    assert os.pathconf(tmp_path, "PC_NAME_MAX") == 255
    if fits:
        with atomic_path(tmp_path / name) as tmp:
            tmp.write_bytes(b"ok")
        assert (tmp_path / name).read_bytes() == b"ok"
        return
    with pytest.raises(WriteError, match=rf"is {len(name.encode())} bytes long, more than the 255"), \
            atomic_path(tmp_path / name):
        pass
    with pytest.raises(WriteError, match="File name too long"):  # as a folder: the OS's own words
        train(hello(tmp_path / name))
    assert list(tmp_path.iterdir()) == []
