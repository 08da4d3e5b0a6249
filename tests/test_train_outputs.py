"""What training leaves behind (checkpoints, metrics, plot) and `rnnkit train` on the command line."""

from __future__ import annotations

import csv
import json
import logging
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from click.testing import CliRunner  # noqa: E402

from rnnkit.runtime.cli import cli  # noqa: E402
from rnnkit.runtime.errors import CheckpointError, WriteError  # noqa: E402
from rnnkit.train import checkpoint as checkpoint_module  # noqa: E402
from rnnkit.train.checkpoint import load_checkpoint, model_from_checkpoint, save_checkpoint  # noqa: E402
from rnnkit.train.cli import train as train_command  # noqa: E402
from rnnkit.train.config import TrainConfig  # noqa: E402
from rnnkit.train.report import CSV_FIELDS  # noqa: E402
from rnnkit.train.trainer import train  # noqa: E402

TINY = ["--hidden", "16", "--embed", "8", "--patience", "0", "--device", "cpu", "--threads", "1", "--quiet"]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def classify_tsv(folder: Path, extra: str = "") -> str:
    lines = [f"pos\t{t}好" if i % 2 == 0 else f"neg\t{t}差" for i, t in enumerate("我你他这那个书很是的了东西" * 2)]
    path = folder / "reviews.tsv"
    path.write_text("\n".join(lines) + "\n" + extra, encoding="utf-8")
    return str(path)


def hello(out: Path, epochs: int = 3, lr: float = 3e-3) -> TrainConfig:
    return TrainConfig(task="tag", data="builtin:hello", out=str(out), epochs=epochs, lr=lr, hidden=16, embed=8,
                       patience=0, device="cpu")


def plain(value, where="checkpoint") -> None:
    """Fail unless ``value`` holds only plain values and tensors (what weights_only allows)."""
    if isinstance(value, dict):
        for key, item in value.items():
            assert isinstance(key, (str, int)), f"{where}: key {key!r}"
            plain(item, f"{where}[{key!r}]")
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            plain(item, f"{where}[{i}]")
    else:
        assert value is None or isinstance(value, (str, int, float, bool, torch.Tensor)), \
            f"{where} is a {type(value).__name__}"


# --- 4. checkpoints -------------------------------------------------------------------------

HEADER = {"rnnkit_checkpoint", "rnnkit", "torch", "created"}
COMMON = {"task", "tag_scheme", "model_config", "train_config", "tokenizer", "vocab", "labels", "model",
          "progress", "history", "curve", "metrics", "split", "data"}
PROGRESS = {"epoch", "batch", "step", "tokens", "seconds", "loss_sum", "loss_count", "loss_ema", "best",
            "best_epoch", "bad_epochs", "done"}


def test_checkpoints_are_plain_weights_only_files_with_the_documented_layout(tmp_path):
    train(hello(tmp_path))
    best = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    last = torch.load(tmp_path / "last.pt", weights_only=True)
    for name, ckpt in (("checkpoint.pt", best), ("last.pt", last)):
        plain(ckpt, name)
        assert set(ckpt["progress"]) == PROGRESS
        assert set(ckpt["data"]) == {"source", "fingerprint", "skipped"}
        assert ckpt["rnnkit_checkpoint"] == checkpoint_module.CHECKPOINT_VERSION
    assert set(best) == HEADER | COMMON | {"valid_sample"}
    assert set(last) == HEADER | COMMON | {"optimizer", "scheduler", "rng", "carry"}
    assert set(last["rng"]) == {"torch", "cuda"} and last["carry"] is None  # carry is lm only
    for key in HEADER | COMMON | {"valid_sample", "optimizer", "scheduler", "rng", "carry"} | PROGRESS:
        assert f'"{key}"' in checkpoint_module.__doc__, f"{key} is not documented in checkpoint.py"
    assert best["metrics"]["test"]["count"] == 5 and len(best["history"]) == 3
    assert best["valid_sample"] == [[list("hello"), list("ohlol")]]


def test_best_checkpoint_rebuilds_the_model(tmp_path):
    train(hello(tmp_path, epochs=60, lr=0.05))
    ckpt = load_checkpoint(tmp_path)
    model, tokenizer, vocab = model_from_checkpoint(ckpt)
    k = ckpt["train_config"]["lookahead"]  # a tagger reads k tokens (here <pad>) past each one
    ids = torch.tensor([vocab.encode(tokenizer.tokenize("hello")) + [vocab.pad_id] * k])
    logits, _ = model(ids)  # (1, 5 + k, 3)
    assert [ckpt["labels"][i] for i in logits.argmax(-1)[0, k:].tolist()] == list("ohlol")


def test_a_pickled_module_is_refused(tmp_path):
    torch.save(torch.nn.Linear(2, 2), tmp_path / "module.pt")
    with pytest.raises(CheckpointError, match="pickled Python objects"):
        load_checkpoint(tmp_path / "module.pt")


def test_a_truncated_checkpoint_is_refused(tmp_path):
    train(hello(tmp_path, epochs=1))
    data = (tmp_path / "checkpoint.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"not a torch checkpoint|not a readable checkpoint"):
        load_checkpoint(tmp_path / "cut.pt")


def test_a_failed_write_leaves_the_previous_checkpoint(tmp_path, monkeypatch):
    path = save_checkpoint({"task": "lm", "model": {"w": torch.ones(3)}}, tmp_path / "checkpoint.pt")
    before = path.read_bytes()
    real_save = torch.save

    def half_then_fail(obj, f, *args, **kwargs):
        real_save(obj, f, *args, **kwargs)
        Path(f).write_bytes(Path(f).read_bytes()[:100])  # half a file on disk, then the disk is full
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", half_then_fail)
    with pytest.raises(WriteError, match=r"checkpoint\.pt.*No space left.*untouched"):
        save_checkpoint({"task": "lm", "model": {"w": torch.zeros(3)}}, path)
    assert path.read_bytes() == before
    assert torch.equal(torch.load(path, weights_only=True)["model"]["w"], torch.ones(3))
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]  # no temp file left


def test_torch_write_errors_become_write_errors(tmp_path, fresh_python):
    # A real failed write (file size limit): torch raises RuntimeError, not OSError.
    pytest.importorskip("resource")
    result = fresh_python(f"""
        import resource, signal, torch
        from pathlib import Path
        from rnnkit.runtime.errors import WriteError
        from rnnkit.train.checkpoint import load_checkpoint, save_checkpoint
        path = Path({str(tmp_path)!r}) / "checkpoint.pt"
        save_checkpoint({{"task": "lm", "model": {{"w": torch.ones(3)}}}}, path)
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))
        try:
            save_checkpoint({{"task": "lm", "model": {{"w": torch.zeros(1_000_000)}}}}, path)
        except WriteError as e:
            print("WriteError", e)
        print(torch.load(path, weights_only=True)["model"]["w"].tolist())
        print(sorted(p.name for p in path.parent.iterdir()))
    """)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("WriteError could not write") and "untouched" in lines[0]
    assert lines[1:] == ["[1.0, 1.0, 1.0]", "['checkpoint.pt']"]


def test_a_failed_save_during_training_is_a_write_error(tmp_path, monkeypatch):
    def fail(*args, **kwargs):
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 704 vs 598")

    monkeypatch.setattr(torch, "save", fail)
    with pytest.raises(WriteError, match="could not write"):
        train(hello(tmp_path, epochs=1))


# --- 5. reports -----------------------------------------------------------------------------


def test_metrics_csv_json_and_plot(tmp_path):
    result = train(TrainConfig(task="classify", data=classify_tsv(tmp_path), out=str(tmp_path / "run"), epochs=3,
                               hidden=16, embed=8, patience=0, batch_size=4, device="cpu"))
    run = tmp_path / "run"
    assert result.files == {"metrics_csv": run / "metrics.csv", "metrics_json": run / "metrics.json",
                            "loss_png": run / "loss.png"}
    with open(run / "metrics.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    # one row a step (a short run logs every one), the validation columns filled at each epoch end
    steps_per_epoch = result.history[0]["step"]
    assert [int(r["step"]) for r in rows] == list(range(1, 3 * steps_per_epoch + 1))
    assert list(rows[0]) == [f if f != "valid_metric" else "valid_accuracy" for f in CSV_FIELDS]  # named
    validated = [r for r in rows if r["valid_loss"]]
    assert [int(r["step"]) for r in validated] == [h["step"] for h in result.history]
    assert [float(r["valid_accuracy"]) for r in validated] == [h["valid"]["accuracy"] for h in result.history]
    assert all(r["valid_accuracy"] == "" for r in rows if not r["valid_loss"])
    assert [float(r["train_loss"]) for r in rows] == [c["train_loss"] for c in result.curve]
    assert all(float(r["train_loss"]) > 0 for r in rows) and all(float(r["valid_loss"]) > 0 for r in validated)
    report = json.loads((run / "metrics.json").read_text(encoding="utf-8"))
    assert len(report["history"]) == 3 and report["curve"] == result.curve
    assert report["final"]["test"] == result.metrics["test"] and "accuracy" in report["final"]["test"]
    assert report["final"]["valid"] == result.metrics["valid"]
    assert report["metric"] == "accuracy" and report["config"]["task"] == "classify"
    assert report["split"]["sizes"] == result.split["sizes"]
    assert (run / "loss.png").read_bytes().startswith(PNG_MAGIC)


def test_no_matplotlib_means_no_plot_and_one_warning(tmp_path, monkeypatch, caplog):
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")] + ["matplotlib"]:
        monkeypatch.setitem(sys.modules, name, None)  # what an uninstalled package looks like
    for run in ("a", "b"):  # every run says it once, not just the first in the process
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="rnnkit"):
            result = train(hello(tmp_path / run, epochs=2))
        warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
        assert len(warnings) == 1 and "matplotlib" in warnings[0] and "rnnkit[plot]" in warnings[0]
        assert not (tmp_path / run / "loss.png").exists()
        assert "loss_png" not in result.files and (tmp_path / run / "metrics.json").exists()


def test_plot_leaves_the_pyplot_backend_alone(tmp_path):
    matplotlib = pytest.importorskip("matplotlib")
    backend = matplotlib.get_backend()
    train(hello(tmp_path, epochs=2))
    assert matplotlib.get_backend() == backend


# --- 6. malformed input through the CLI -----------------------------------------------------


def invoke(args: list[str]):
    return CliRunner().invoke(cli, ["train", *args])


def assert_one_error_line(result) -> None:
    assert result.exit_code != 0
    assert isinstance(result.exception, SystemExit), result.exception  # not an unhandled error
    assert "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.output


def write(folder: Path, name: str, content: bytes | str) -> str:
    path = folder / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return str(path)


BAD_DATA = [
    ("classify", "bad.tsv", "pos\t好\nno label here\n", "no tab", 1),
    ("classify", "bad.tsv", "pos\t好\n\tno label here\n", "empty label", 1),
    ("classify", "bad.tsv", b"pos\tok\nneg\t\xff\xfe\n", "not valid UTF-8", 1),
    ("tag", "bad.txt", "好/a 人/n\n好 人/n\n", "has no '/'", 1),
    ("lm", "missing.txt", None, "file does not exist", 1),
]


@pytest.mark.parametrize(("task", "name", "content", "says", "code"), BAD_DATA)
def test_bad_data_is_one_error_line(tmp_path, task, name, content, says, code):
    data = write(tmp_path, name, content) if content is not None else str(tmp_path / name)
    result = invoke(["--task", task, "--data", data, "--out", str(tmp_path / "run"), *TINY])
    assert_one_error_line(result)
    assert result.exit_code == code and says in result.output
    if content is not None:
        assert f"{data}:2:" in result.output  # the file and line
    assert not (tmp_path / "run" / "checkpoint.pt").exists()


@pytest.mark.parametrize(("args", "says"), [
    (["--task", "classify", "--data", "builtin:imdb"], "unknown built-in corpus 'imdb'"),
    (["--task", "tag", "--data", "SEG", "--level", "word"], "tagged per char"),
    (["--task", "lm", "--data", "builtin:hello", "--tie-weights", "--embed", "8"], "embed == hidden"),
    (["--task", "classify", "--data", "builtin:reviews", "--tie-weights"], "lm only"),
    (["--task", "tag", "--data", "builtin:hello", "--cell", "transformer"], "'--cell'"),
    (["--task", "translate", "--data", "builtin:hello"], "'--task'"),
])
def test_bad_options_are_usage_errors(tmp_path, args, says):
    seg = write(tmp_path, "seg.txt", "中/B 国/E 的/S\n")
    args = [seg if a == "SEG" else a for a in args]
    result = invoke([*args, "--out", str(tmp_path / "run"), "--hidden", "16", "--quiet"])
    assert_one_error_line(result)
    assert result.exit_code == 2 and says in result.output


def test_skip_bad_trains_and_counts(tmp_path):
    data = classify_tsv(tmp_path, extra="no tab\n\tno label\n")
    result = invoke(["--task", "classify", "--data", data, "--out", str(tmp_path / "run"), "--epochs", "1",
                     "--skip-bad", *TINY])
    assert result.exit_code == 0, result.output
    assert "skipped 2 malformed lines" in result.output
    assert load_checkpoint(tmp_path / "run")["data"]["skipped"] == 2


# --- 7. help and the report of a run --------------------------------------------------------


def test_train_help_lists_every_option():
    result = invoke(["--help"])
    assert result.exit_code == 0
    assert "Usage:" in result.output and "Train an Embedding" in result.output
    for param in train_command.params:
        for opt in param.opts:
            assert opt in result.output, opt
        assert param.help, f"{param.name} has no help"


def test_into_a_log_the_progress_bar_is_drawn_rarely_not_every_step(tmp_path):
    result = invoke(["--task", "tag", "--data", "builtin:hello", "--out", str(tmp_path / "run"), "--epochs", "60",
                     "--hidden", "8"])  # stderr is not a terminal here, as in a CI log
    assert result.exit_code == 0, result.output
    draws = result.stderr.count("training:")
    assert 1 <= draws <= 3, result.stderr[-500:]  # first and last; a 30 s interval is not reached


def test_a_run_says_where_everything_went(tmp_path):
    out = tmp_path / "run"
    result = invoke(["--task", "tag", "--data", "builtin:hello", "--out", str(out), "--epochs", "2",
                     "--seed", "5", *TINY])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "split (seed 5): train 1, valid 1, test 1" in lines
    assert f"checkpoint: {out / 'checkpoint.pt'}" in lines
    for name in ("metrics.csv", "metrics.json", "loss.png"):
        assert f"{name}: {out / name}" in lines
        assert (out / name).exists()
    assert any(line.startswith("test: loss") for line in lines)

    again = invoke(["--task", "tag", "--data", "builtin:hello", "--out", str(out), "--epochs", "2",
                    "--seed", "5", "--resume", *TINY])
    assert again.exit_code == 0, again.output
    assert f"checkpoint: {out / 'checkpoint.pt'}" in again.output.splitlines()

    fresh = invoke(["--task", "tag", "--data", "builtin:hello", "--out", str(out), "--epochs", "2", *TINY])
    assert_one_error_line(fresh)
    assert "--resume" in fresh.output

    changed = invoke(["--task", "tag", "--data", "builtin:hello", "--out", str(out), "--epochs", "3",
                      "--seed", "5", "--resume", *TINY])
    assert_one_error_line(changed)
    assert "differ: epochs" in changed.output


def test_cli_run_killed_with_sigkill_resumes_to_the_same_model(tmp_path):
    signal = pytest.importorskip("signal")
    if not hasattr(signal, "SIGKILL"):
        pytest.skip("needs SIGKILL")
    import subprocess
    import time

    data = classify_tsv(tmp_path)
    args = ["--task", "classify", "--data", data, "--epochs", "30", "--batch-size", "4", "--save-every", "3",
            "--dropout", "0.2", "--seed", "3", *TINY]
    out = tmp_path / "killed"
    code = f"from rnnkit.runtime.cli import main; main({['train', *args, '--out', str(out)]!r})"
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while not (out / "last.pt").exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.3)  # somewhere in the middle of the run, maybe in the middle of a write
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read()
    assert not load_checkpoint(out, name="last.pt")["progress"]["done"]

    resumed = invoke([*args, "--out", str(out), "--resume"])
    assert resumed.exit_code == 0, resumed.output
    whole = invoke([*args, "--out", str(tmp_path / "whole")])
    assert whole.exit_code == 0, whole.output
    a, b = load_checkpoint(tmp_path / "whole"), load_checkpoint(out)
    for name in a["model"]:
        assert torch.equal(a["model"][name], b["model"][name]), name
    assert [h["train_loss"] for h in a["history"]] == [h["train_loss"] for h in b["history"]]
