"""Issue 17, the launcher: the options of a run on many processes, starting its workers through
torchrun's elastic launcher (``rnnkit train --nproc-per-node 2``, ``TrainConfig(nproc_per_node=2)``,
``python -m rnnkit.train``), a worker killed mid-run, ``--resume`` after it and ``--max-restarts``.

Each launch starts two worker processes that import torch: a few seconds on their own, more on a
busy 2-core machine. The runs are tiny (hidden 16, 26 examples, 30 steps); one uninterrupted
2-worker run is the reference the others end at.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from rnnkit.export import export_onnx  # noqa: E402
from rnnkit.runtime import load_model  # noqa: E402
from rnnkit.runtime.cli import main  # noqa: E402
from rnnkit.runtime.errors import CheckpointError, ConfigError  # noqa: E402
from rnnkit.train.checkpoint import load_checkpoint  # noqa: E402
from rnnkit.train.config import TrainConfig  # noqa: E402
from rnnkit.train.precision import Precision  # noqa: E402
from rnnkit.train.trainer import train  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SLOW_WORKERS = ROOT / "tests" / "slow_workers"  # its sitecustomize makes every AdamW step sleep
OPTIONS = {"task": "classify", "hidden": 16, "embed": 8, "max_steps": 30, "batch_size": 4, "save_every": 5,
           "patience": 0, "device": "cpu", "threads": 1}
can_kill = pytest.mark.skipif(not (hasattr(signal, "SIGKILL") and Path("/proc/self/task").is_dir()),
                              reason="needs SIGKILL and /proc")


def args(data: Path, out: Path, *more: str) -> list[str]:
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in OPTIONS.items()]
    return ["train", *flags, "--data", str(data), "--out", str(out), "--quiet", *more]


def config(data: Path, out: Path, **more) -> TrainConfig:
    return TrainConfig(**{**OPTIONS, "data": str(data), "out": str(out), **more})


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    lines = [f"pos\t{t}好" if i % 2 == 0 else f"neg\t{t}差" for i, t in enumerate("我你他这那个书很是的了东西" * 2)]
    path = tmp_path_factory.mktemp("data") / "reviews.tsv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def reference(data, tmp_path_factory):
    """An uninterrupted 2-worker run through the Python API, and the signal handlers around it."""
    before = signal.getsignal(signal.SIGINT)
    result = train(config(data, tmp_path_factory.mktemp("reference") / "run", nproc_per_node=2), progress=False)
    return result, before, signal.getsignal(signal.SIGINT)


def weights(out: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(out, name="last.pt")["model"]


def assert_same_weights(a: Path, b: Path) -> None:
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    for name in wa:
        assert torch.allclose(wa[name], wb[name], rtol=0, atol=1e-6), (name, (wa[name] - wb[name]).abs().max())


# -- the options -----------------------------------------------------------------------------
@pytest.mark.parametrize("options, error, says", [
    ({"nproc_per_node": 0}, ConfigError, "nproc-per-node must be in 1..1024"),
    ({"nproc_per_node": 5000}, ConfigError, "nproc-per-node must be in 1..1024"),
    ({"nproc_per_node": 2.0}, TypeError, "nproc_per_node must be an integer"),
    ({"nproc_per_node": 3}, ConfigError, "--batch-size 4 is the global batch and must divide by the 3 workers"),
    ({"nnodes": "0"}, ConfigError, "nnodes must be 1..1024 nodes"),
    ({"nnodes": "3:2"}, ConfigError, "MIN:MAX with 1 ≤ MIN ≤ MAX"),
    ({"nnodes": "1:2:3"}, ConfigError, "nnodes must be a number of nodes or a range MIN:MAX"),
    ({"nnodes": " 2"}, ConfigError, "nnodes must be a number of nodes or a range MIN:MAX"),
    ({"nnodes": 2.0}, TypeError, "nnodes must be a string"),
    ({"nnodes": "2"}, ConfigError, "--nnodes 2 needs --rdzv-endpoint"),
    ({"nnodes": "1:3"}, ConfigError, "--nnodes 1:3 needs --rdzv-endpoint"),
    ({"nnodes": "3", "rdzv_endpoint": "h:1"}, ConfigError,
     "must divide by the 3 workers (--nproc-per-node 1 × --nnodes 3)"),
    ({"rdzv_endpoint": "h:0"}, ConfigError, "rdzv-endpoint must be HOST:PORT"),
    ({"rdzv_endpoint": "h:65536"}, ConfigError, "rdzv-endpoint must be HOST:PORT"),
    ({"rdzv_endpoint": "two words:1"}, ConfigError, "rdzv-endpoint must be HOST:PORT"),
    ({"rdzv_endpoint": ""}, ConfigError, "rdzv-endpoint must be HOST:PORT"),
    ({"rdzv_endpoint": 29400}, TypeError, "rdzv_endpoint must be a string"),
    ({"node_rank": 0}, ConfigError, "--node-rank needs --rdzv-endpoint"),
    ({"node_rank": -1}, ConfigError, "node-rank must be in 0..1023"),
    ({"node_rank": 2, "nnodes": "2", "rdzv_endpoint": "h:1"}, ConfigError, "node-rank must be in 0..1 for --nnodes 2"),
    ({"node_rank": 0, "nnodes": "1:2", "rdzv_endpoint": "h:1"}, ConfigError, "needs a fixed number of nodes"),
    ({"max_restarts": -1}, ConfigError, "max-restarts must be in 0..1000"),
    ({"max_restarts": True}, TypeError, "max_restarts must be an integer"),
    ({"amp": "fp8"}, ConfigError, "amp must be bf16 or fp16"),
    ({"amp": "bf16", "device": "cpu"}, ConfigError, "--amp bf16 trains under CUDA autocast: it needs --device cuda"),
])
def test_bad_launch_options_are_refused_by_the_config(options, error, says, data, tmp_path):
    with pytest.raises(error) as info:
        config(data, tmp_path / "run", **options)
    assert says in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("options", [
    {"nproc_per_node": 2}, {"nproc_per_node": 4}, {"nnodes": "1:4", "rdzv_endpoint": "node0.example:29400"},
    {"nnodes": "2", "rdzv_endpoint": "10.0.0.1:29400", "node_rank": 1}, {"nnodes": 2, "rdzv_endpoint": "[::1]:29400"},
    {"rdzv_endpoint": "localhost"}, {"max_restarts": 3}, {"amp": "fp16", "device": "auto"},
    {"amp": "bf16", "device": "cuda"},
])
def test_good_launch_options_are_kept(options, data, tmp_path):
    c = config(data, tmp_path / "run", **options)
    assert c.nnodes == str(options.get("nnodes", "1"))
    assert TrainConfig.from_dict(c.to_dict()) == c


@pytest.mark.parametrize("flags, says", [
    (["--nproc-per-node", "0"], "'--nproc-per-node': 0 is not in the range x>=1"),
    (["--nproc-per-node", "two"], "'--nproc-per-node': 'two' is not a valid integer"),
    (["--nproc-per-node", "3"], "--batch-size 4 is the global batch and must divide by the 3 workers"),
    (["--nnodes", "a:b"], "nnodes must be a number of nodes or a range MIN:MAX"),
    (["--nnodes", "2"], "--nnodes 2 needs --rdzv-endpoint HOST:PORT"),
    (["--nnodes", "2", "--rdzv-endpoint", "host:port"], "rdzv-endpoint must be HOST:PORT"),
    (["--node-rank", "-1"], "'--node-rank': -1 is not in the range x>=0"),
    (["--node-rank", "1"], "--node-rank needs --rdzv-endpoint"),
    (["--nnodes", "2", "--rdzv-endpoint", "h:1", "--node-rank", "5"], "node-rank must be in 0..1 for --nnodes 2"),
    (["--max-restarts", "-1"], "'--max-restarts': -1 is not in the range x>=0"),
    (["--max-restarts", "5000"], "max-restarts must be in 0..1000"),
    (["--amp", "fp32"], "'fp32' is not one of 'bf16', 'fp16'"),
    (["--amp", "fp16"], "--amp fp16 trains under CUDA autocast: it needs --device cuda"),  # OPTIONS say cpu
])
def test_bad_launch_options_are_usage_errors(flags, says, data, tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        main([*args(data, tmp_path / "run"), *flags])
    err = capsys.readouterr().err
    assert info.value.code == 2, err
    errors = [line for line in err.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and says in errors[0], err
    assert not (tmp_path / "run").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA GPU is here")
def test_amp_without_a_gpu_is_a_usage_error(data, tmp_path, capsys):
    with pytest.raises(ConfigError, match="it needs --device cuda and a CUDA GPU"):
        Precision("fp16", torch.device("cpu"))
    options = [a for a in args(data, tmp_path / "run") if a != "--device=cpu"]  # auto: the CPU here
    with pytest.raises(SystemExit) as info:
        main([*options, "--amp", "bf16"])
    err = capsys.readouterr().err
    assert info.value.code == 2, err
    assert "Error: --amp bf16 trains under CUDA autocast and this run's device is cpu" in err


def test_python_m_rnnkit_train_is_the_train_command():
    shown = subprocess.run([sys.executable, "-m", "rnnkit.train", "--help"], capture_output=True, text=True,
                           cwd=ROOT, timeout=120)
    assert shown.returncode == 0, shown.stderr
    assert "torchrun --nproc-per-node N -m rnnkit.train" in " ".join(shown.stdout.split())
    bad = subprocess.run([sys.executable, "-m", "rnnkit.train", "--task", "tag", "--data", "builtin:hello",
                          "--out", "unused", "--nnodes", "2"], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert bad.returncode == 2
    assert [line for line in bad.stderr.splitlines() if line.startswith("Error:")] == [
        "Error: --nnodes 2 needs --rdzv-endpoint HOST:PORT, where the nodes meet (the same on every node)"]


# -- launching -------------------------------------------------------------------------------
@pytest.mark.slow
def test_two_workers_through_the_api_write_a_checkpoint_export_reads(reference, tmp_path):
    result, before, after = reference
    assert result.metrics["world_size"] == 2
    assert result.checkpoint.is_file() and result.history and result.metrics["test"]
    assert after == before, "the launcher left its own Ctrl-C handler behind"
    export_onnx(result.checkpoint, tmp_path / "two.onnx")
    model = load_model(tmp_path / "two.onnx")
    assert model.classify("我好").label in ("pos", "neg")


@pytest.mark.slow
def test_two_workers_through_the_cli_end_where_the_api_run_ends(reference, data, tmp_path, capfd):
    main(args(data, tmp_path / "cli", "--nproc-per-node", "2"))
    out, err = capfd.readouterr()
    assert "processes: 2 (2 workers on cpu)" in out, out + err
    assert err == "", err  # --quiet: the launcher and the workers say nothing
    assert_same_weights(reference[0].out, tmp_path / "cli")


@pytest.mark.slow
def test_torchrun_m_rnnkit_train_is_the_same_run(reference, data, tmp_path):
    """torchrun as the launcher: every worker runs the train command, rank 0 alone prints the summary."""
    out = tmp_path / "torchrun"
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                           "-m", "rnnkit.train", *args(data, out)[1:]], capture_output=True, text=True, cwd=ROOT,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("processes: 2 (2 workers on cpu)") == 1, done.stdout
    assert_same_weights(reference[0].out, out)


@pytest.mark.slow
def test_a_worker_error_comes_back_as_its_own_error(reference, data):
    """rank 0 refuses a folder that holds a run: the launcher raises that ConfigError, not a worker's exit code."""
    with pytest.raises(ConfigError, match="already holds a training run: pass --resume"):
        train(config(data, reference[0].out, nproc_per_node=2), progress=False)


def worker_pids(parent: int) -> list[int]:
    """The launcher's worker processes: its children that multiprocessing spawned (not its resource tracker)."""
    children = []
    for task in Path(f"/proc/{parent}/task").iterdir():
        children += [int(pid) for pid in (task / "children").read_text().split()]
    found = []
    for pid in children:
        try:
            if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes():
                found.append(pid)
        except OSError:  # it ended meanwhile
            pass
    return sorted(found)


def kill_a_worker_once_last_pt_exists(out: Path, killed: list[int], *, timeout: float = 120) -> threading.Thread:
    """In the background: wait for OUT/last.pt and both workers, then SIGKILL one of them."""
    def kill() -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            workers = worker_pids(os.getpid())
            if (out / "last.pt").is_file() and len(workers) == 2:
                os.kill(workers[-1], signal.SIGKILL)
                killed.append(workers[-1])
                return
            time.sleep(0.02)

    thread = threading.Thread(target=kill, daemon=True)
    thread.start()
    return thread


@pytest.mark.slow
@can_kill
def test_a_killed_worker_ends_the_run_in_one_line_and_resume_ends_where_the_whole_run_ends(
        reference, data, tmp_path, capfd, monkeypatch):
    out = tmp_path / "killed"
    monkeypatch.setenv("PYTHONPATH", str(SLOW_WORKERS))  # the workers' steps take 0.2 s: the kill lands mid-run
    monkeypatch.setenv("RNNKIT_TEST_STEP_SECONDS", "0.2")
    killed: list[int] = []
    thread = kill_a_worker_once_last_pt_exists(out, killed)
    with pytest.raises(SystemExit) as info:
        main(args(data, out, "--nproc-per-node", "2"))
    thread.join()
    _, err = capfd.readouterr()
    assert info.value.code == 1 and killed, err
    step = load_checkpoint(out, name="last.pt")["progress"]["step"]
    assert 0 < step < OPTIONS["max_steps"]
    assert re.fullmatch(rf"Error: worker [01] \(pid {killed[0]}\) was killed by SIGKILL; the run stopped; "
                        rf"--resume continues from {re.escape(str(out / 'last.pt'))} \(step {step}\)\n", err), err

    monkeypatch.delenv("RNNKIT_TEST_STEP_SECONDS")
    main(args(data, out, "--nproc-per-node", "2", "--resume"))
    assert "processes: 2" in capfd.readouterr().out
    assert load_checkpoint(out, name="last.pt")["progress"]["done"]
    assert_same_weights(reference[0].out, out)


@pytest.mark.slow
@can_kill
def test_max_restarts_restarts_a_killed_worker_and_the_run_completes_by_itself(
        reference, data, tmp_path, capfd, monkeypatch):
    out = tmp_path / "restarted"
    monkeypatch.setenv("PYTHONPATH", str(SLOW_WORKERS))
    monkeypatch.setenv("RNNKIT_TEST_STEP_SECONDS", "0.15")
    killed: list[int] = []
    thread = kill_a_worker_once_last_pt_exists(out, killed)
    main(args(data, out, "--nproc-per-node", "2", "--max-restarts", "1"))
    thread.join()
    captured = capfd.readouterr()
    assert killed, captured.err
    assert "processes: 2" in captured.out, captured.out + captured.err
    assert killed[0] not in worker_pids(os.getpid())
    assert load_checkpoint(out, name="last.pt")["progress"]["done"]
    assert_same_weights(reference[0].out, out)


def test_precision_off_is_float32_and_keeps_no_state():
    p = Precision(None, "cpu")
    assert not p.skips_overflow and p.state_dict() == {}
    model = torch.nn.Linear(3, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    with p.autocast():
        loss = model(torch.ones(2, 3)).pow(2).sum()
    assert loss.dtype == torch.float32
    p.backward(loss)
    assert float(p.unscale_and_clip(optimizer, model.parameters(), 1e-3)) > 1e-3
    assert p.step(optimizer)
    p.load_state_dict({"scale": 65536.0})  # a resumed fp16 run's scaler, now without --amp: nothing to restore
    with pytest.raises(CheckpointError, match="the precision state is a list"):
        p.load_state_dict([])
