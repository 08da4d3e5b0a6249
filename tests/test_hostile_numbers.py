"""Numbers that are not numbers: training options, a loss that turns NaN, sampling options.

Every bad value is one typed error before any work (CLI: exit 2, one ``Error:`` line); a run
whose loss or weights stop being finite stops without saving them, and what it saved before
stays loadable and resumable.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from factory import tiny_onnx  # noqa: E402

from rnnkit.runtime import ConfigError, RnnkitError, load_model  # noqa: E402
from rnnkit.runtime.cli import main  # noqa: E402
from rnnkit.runtime.errors import CheckpointError, NonFiniteError, TrainingError  # noqa: E402
from rnnkit.runtime.sampling import MAX_SEED, Sampler  # noqa: E402
from rnnkit.train import config as config_module  # noqa: E402
from rnnkit.train import trainer as trainer_module  # noqa: E402
from rnnkit.train.checkpoint import BEST_NAME, LAST_NAME, load_checkpoint  # noqa: E402
from rnnkit.train.config import TrainConfig, check_model_size  # noqa: E402
from rnnkit.train.trainer import train  # noqa: E402

BASE = {"task": "tag", "data": "builtin:hello", "out": "unused", "hidden": 8, "embed": 4, "device": "cpu",
        "threads": 1, "patience": 0}
HELLO_ARGS = ["--task", "tag", "--data", "builtin:hello", "--hidden", "8", "--embed", "4", "--device", "cpu",
              "--threads", "1", "--patience", "0", "--quiet"]


def run_cli(argv, capsys) -> tuple[int, list[str], str]:
    """(exit code, the Error: lines, all of stderr) of ``rnnkit argv``."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as info:
        main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return info.value.code, [line for line in err.splitlines() if line.startswith("Error:")], err


def assert_one_line(error: BaseException) -> None:
    assert isinstance(error, RnnkitError)
    assert "\n" not in str(error) and len(str(error)) < 600, str(error)


# -- training options -----------------------------------------------------------------------------
BAD_OPTIONS = [
    ("lr", math.inf), ("lr", -math.inf), ("lr", math.nan), ("lr", 0), ("lr", -1e-3), ("lr", 10**400),
    ("clip", math.nan), ("clip", math.inf), ("clip", 0), ("clip", -1.0),
    ("weight_decay", math.nan), ("weight_decay", math.inf), ("weight_decay", -0.01),
    ("dropout", math.nan), ("dropout", 1.0), ("dropout", -0.1), ("dropout", math.inf),
    ("warmup", math.nan), ("warmup", 1.0), ("warmup", -0.5),
    ("valid_fraction", math.nan), ("valid_fraction", 0.5), ("valid_fraction", -0.1),
    ("test_fraction", math.inf), ("test_fraction", 0.7),
    ("seed", -1), ("seed", 2**32), ("seed", 2**64), ("seed", 10**30), ("seed", -(2**63)),
    ("threads", 0), ("threads", -4), ("threads", 1025), ("threads", 100_000), ("threads", 2**31),
    ("epochs", 0), ("epochs", -1), ("epochs", 1_000_001), ("epochs", 10**400),
    ("batch_size", 0), ("batch_size", 10**7), ("bptt", 0), ("bptt", 10**9), ("max_len", -5), ("max_len", 2**21),
    ("hidden", 0), ("hidden", 65_537), ("embed", -1), ("embed", 10**6), ("layers", 0), ("layers", 10**5),
    ("max_steps", 0), ("max_steps", 10**13), ("max_vocab", 4), ("max_vocab", 2_000_001),
    ("limit", 0), ("limit", 10**13), ("min_freq", 0), ("save_every", 0), ("valid_sample", 0),
    ("patience", -1), ("patience", 10**7), ("lookahead", -1), ("lookahead", 17),
]


@pytest.mark.parametrize(("field", "value"), BAD_OPTIONS, ids=[f"{f}={v!r:.20}" for f, v in BAD_OPTIONS])
def test_a_bad_number_is_one_config_error_naming_the_option(field, value):
    with pytest.raises(ConfigError) as info:
        TrainConfig(**{**BASE, field: value})
    assert_one_line(info.value)
    assert str(info.value).startswith(field.replace("_", "-") + " must be")


@pytest.mark.parametrize(("field", "value"), [
    ("lr", "0.1"), ("lr", True), ("lr", None), ("epochs", 2.0), ("epochs", True), ("seed", "7"), ("seed", 1.5),
    ("threads", 2.5), ("dropout", "0.1"), ("hidden", None),
])
def test_a_value_of_the_wrong_type_is_a_type_error(field, value):
    with pytest.raises(TypeError, match=field):
        TrainConfig(**{**BASE, field: value})


@pytest.mark.parametrize(("field", "value"), [
    ("seed", 0), ("seed", MAX_SEED), ("seed", np.int64(5)), ("threads", 1024), ("lr", 1e30), ("lr", 1),
    ("clip", 1e-30), ("weight_decay", 0), ("dropout", 0.999), ("epochs", 1_000_000), ("hidden", 4096),
    ("max_vocab", 5), ("max_vocab", 2_000_000), ("patience", 0), ("valid_fraction", 0), ("lookahead", 16),
])
def test_values_at_the_edges_are_accepted(field, value):
    assert getattr(TrainConfig(**{**BASE, field: value}), field) == value


def test_weights_that_no_model_file_could_hold_are_refused_from_the_options():
    with pytest.raises(ConfigError, match="more than the 500,000,000 a model file holds"):
        TrainConfig(**{**BASE, "cell": "lstm", "hidden": 8000, "layers": 2})
    TrainConfig(**{**BASE, "cell": "lstm", "hidden": 2000, "layers": 2})  # 48 M weights: fine


def test_the_vocabulary_and_step_sizes_are_checked_with_the_data_known():
    c = TrainConfig(**{**BASE, "task": "lm", "embed": 256, "hidden": 256})
    check_model_size(c, vocab_size=50_000, n_out=50_000, rows=32, seq=64)
    with pytest.raises(ConfigError, match=r"embedding 2,000,000 × 256.*--max-vocab"):
        check_model_size(c, vocab_size=2_000_000, n_out=2_000_000, rows=1, seq=1)
    with pytest.raises(ConfigError, match=r"one training step would hold [\d,]+ floats \(batch 4096 × 4096 tokens"):
        check_model_size(c, vocab_size=50_000, n_out=50_000, rows=4096, seq=4096)


def test_a_step_too_large_is_refused_before_any_weight_exists(tmp_path, monkeypatch):
    monkeypatch.setattr(config_module, "MAX_STEP_ELEMENTS", 100)

    def no_model(*args, **kwargs):
        raise AssertionError("the model was built")

    monkeypatch.setattr(trainer_module, "RNNModel", no_model)
    with pytest.raises(ConfigError, match=r"one training step would hold .*--batch-size") as info:
        train(TrainConfig(**{**BASE, "out": str(tmp_path / "run"), "hidden": 64}))
    # one text of 5 letters read 2 past its end (lookahead), 3 tags + 64 state floats a step
    assert "469 floats (batch 1 × 7 tokens × (3 outputs + 1 × 64 state))" in str(info.value)
    assert not (tmp_path / "run" / BEST_NAME).exists()


@pytest.mark.parametrize(("args", "says"), [
    (["--lr", "inf"], "lr must be a finite number > 0, got inf"),
    (["--lr", "nan"], "lr must be a finite number"),
    (["--lr", "-inf"], "Invalid value for '--lr'"),
    (["--lr", "0"], "Invalid value for '--lr'"),
    (["--lr", "abc"], "Invalid value for '--lr'"),
    (["--clip", "nan"], "clip must be"),
    (["--clip", "inf"], "clip must be"),
    (["--clip", "-1"], "Invalid value for '--clip'"),
    (["--weight-decay", "nan"], "weight-decay must be"),
    (["--weight-decay", "inf"], "weight-decay must be"),
    (["--weight-decay", "-1"], "Invalid value for '--weight-decay'"),
    (["--dropout", "nan"], "dropout must be"),
    (["--dropout", "1"], "Invalid value for '--dropout'"),
    (["--seed", "-1"], "seed must be in 0..4294967295"),
    (["--seed", str(2**32)], "seed must be in 0..4294967295"),
    (["--seed", "9" * 400], "seed must be in 0..4294967295"),
    (["--seed", "1.5"], "Invalid value for '--seed'"),
    (["--threads", "0"], "Invalid value for '--threads'"),
    (["--threads", "100000"], "threads must be in 1..1024"),
    (["--threads", str(2**40)], "threads must be in 1..1024"),
    (["--epochs", "0"], "Invalid value for '--epochs'"),
    (["--epochs", "9" * 400], "epochs must be in 1..1000000"),
    (["--batch-size", "100000000"], "batch-size must be in"),
    (["--bptt", "100000000"], "bptt must be in"),
    (["--max-len", "100000000"], "max-len must be in"),
    (["--hidden", "70000"], "hidden must be in 1..65536"),
    (["--hidden", "30000"], "a model file holds"),
    (["--layers", "70000"], "layers must be in 1..65536"),
    (["--embed", "70000"], "embed must be in 1..65536"),
    (["--max-steps", "0"], "Invalid value for '--max-steps'"),
    (["--max-vocab", "3000000"], "max-vocab must be in 5..2000000"),
    (["--valid-fraction", "nan"], "valid-fraction must be"),
    (["--test-fraction", "nan"], "test-fraction must be"),
    (["--patience", "99999999"], "patience must be in 0..1000000"),
    (["--limit", "99999999999999"], "limit must be in"),
])
def test_the_command_refuses_bad_numbers_with_exit_2(tmp_path, capsys, args, says):
    code, errors, _ = run_cli(["train", *HELLO_ARGS, "--out", tmp_path / "run", *args], capsys)
    assert code == 2
    assert len(errors) == 1 and says in errors[0], errors
    assert not (tmp_path / "run" / BEST_NAME).exists()


def test_a_checkpoint_whose_stored_options_are_now_refused_cannot_be_resumed(tmp_path):
    out = tmp_path / "run"
    train(TrainConfig(**{**BASE, "out": str(out), "epochs": 1, "max_steps": 1}))
    last = torch.load(out / LAST_NAME, weights_only=True)
    last["progress"]["done"] = False
    last["train_config"]["seed"] = -1
    torch.save(last, out / LAST_NAME)
    with pytest.raises(CheckpointError, match="training options are damaged: seed must be in") as info:
        train(TrainConfig(**{**BASE, "out": str(out), "epochs": 1, "max_steps": 1}), resume=True)
    assert_one_line(info.value)


# -- a loss that turns NaN ------------------------------------------------------------------------
def poison_from(monkeypatch, step: int, how: str = "loss") -> None:
    """From training step ``step`` (1-based) on, the loss is NaN, or the gradient norm infinite."""
    calls = {"n": 0}
    real_loss = trainer_module.batch_loss
    real_clip = torch.nn.utils.clip_grad_norm_

    def loss(*args, **kwargs):
        calls["n"] += 1
        value, logits, state = real_loss(*args, **kwargs)
        return (value * math.nan if how == "loss" and calls["n"] >= step else value), logits, state

    def clip(*args, **kwargs):
        norm = real_clip(*args, **kwargs)
        return norm * math.inf if how == "norm" and calls["n"] >= step else norm

    monkeypatch.setattr(trainer_module, "batch_loss", loss)
    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", clip)


def hello(out, **changes) -> TrainConfig:
    return TrainConfig(**{**BASE, "out": str(out), "epochs": 6, "save_every": 2, **changes})


def finite_weights(path) -> bool:
    return all(bool(torch.isfinite(t).all()) for t in load_checkpoint(path)["model"].values())


@pytest.mark.parametrize("how", ["loss", "norm"])
def test_a_nan_stop_keeps_the_last_good_checkpoints_and_resume_finishes_the_same_run(tmp_path, monkeypatch, how):
    whole = train(hello(tmp_path / "whole"))
    out = tmp_path / "run"
    poison_from(monkeypatch, 4, how)
    with pytest.raises(TrainingError) as info:
        train(hello(out))
    assert_one_line(info.value)
    what = "the loss is nan" if how == "loss" else "the gradient norm is"
    assert str(info.value).startswith(f"training diverged at step 4 (epoch 4): {what}")
    assert f"last.pt (step 3) and checkpoint.pt in {out} keep the last good weights" in str(info.value)
    last = load_checkpoint(out / LAST_NAME)
    assert last["progress"]["step"] == 3 and not last["progress"]["done"]
    assert finite_weights(out / LAST_NAME) and finite_weights(out / BEST_NAME)
    monkeypatch.undo()
    resumed = train(hello(out), resume=True)
    assert resumed.metrics["valid"] == whole.metrics["valid"]
    assert [h["train_loss"] for h in resumed.history] == [h["train_loss"] for h in whole.history]
    for key, value in load_checkpoint(out / BEST_NAME)["model"].items():
        assert torch.equal(value, load_checkpoint(tmp_path / "whole" / BEST_NAME)["model"][key])


def test_weights_that_turn_infinite_are_never_saved(tmp_path, monkeypatch):
    real = torch.optim.AdamW.step
    calls = {"n": 0}

    def step(self, *args, **kwargs):
        result = real(self, *args, **kwargs)
        calls["n"] += 1
        if calls["n"] == 3:  # the third step leaves one weight infinite
            with torch.no_grad():
                self.param_groups[0]["params"][0].view(-1)[0] = math.inf
        return result

    monkeypatch.setattr(torch.optim.AdamW, "step", step)
    out = tmp_path / "run"
    with pytest.raises(TrainingError, match=r"at step 3 \(epoch 3\): the weights hold NaN or infinity") as info:
        train(hello(out, save_every=1))
    assert "last.pt (step 2)" in str(info.value)
    assert load_checkpoint(out / LAST_NAME)["progress"]["step"] == 2
    assert finite_weights(out / LAST_NAME) and finite_weights(out / BEST_NAME)


def test_a_run_that_diverges_on_a_huge_lr_stops_the_same_way_when_resumed(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["train", *HELLO_ARGS, "--out", out, "--lr", "1e30", "--epochs", "6"]
    code, errors, err = run_cli(argv, capsys)
    assert code == 1 and err.strip() == errors[0]
    assert errors[0].startswith("Error: training diverged at step")
    assert finite_weights(out / BEST_NAME) and finite_weights(out / LAST_NAME)
    # last.pt is whole and resumable: on CPU the resumed run diverges at the very same step
    assert run_cli([*argv, "--resume"], capsys)[1] == errors


def test_a_nan_on_the_very_first_step_writes_no_checkpoint(tmp_path, monkeypatch):
    poison_from(monkeypatch, 1)
    with pytest.raises(TrainingError, match=r"at step 1 .*no checkpoint was written"):
        train(hello(tmp_path / "run"))
    assert not (tmp_path / "run" / BEST_NAME).exists() and not (tmp_path / "run" / LAST_NAME).exists()


# -- sampling -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def lm(tmp_path_factory):
    return load_model(tiny_onnx(tmp_path_factory.mktemp("lm"), task="lm", cell="gru"))


@pytest.mark.parametrize("temperature", [1e-3, 1e-30, 1e-300, 5e-324])
def test_a_tiny_temperature_is_greedy_without_a_numpy_warning(lm, temperature):
    greedy = list(lm.generate("我爱", max_tokens=20, temperature=0))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for seed in (0, 1, 2):
            assert list(lm.generate("我爱", max_tokens=20, temperature=temperature, seed=seed)) == greedy


def test_a_tiny_temperature_draws_among_tied_tokens_only():
    logits = np.array([0.5, 3.0, -2.0, 3.0, 2.999], dtype=np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for top_k, top_p in ((None, None), (3, None), (None, 0.99), (4, 0.9)):
            s = Sampler(temperature=5e-324, top_k=top_k, top_p=top_p, seed=0)
            rng = s.rng()
            drawn = {s.choose(logits, rng) for _ in range(200)}
            assert drawn <= {1, 3} and (top_p is not None or drawn == {1, 3})


@pytest.mark.parametrize("temperature", [1e30, 1e300, 1.7e308])
def test_a_huge_temperature_is_near_uniform_and_finite(temperature):
    s = Sampler(temperature=temperature, seed=0)
    rng = s.rng()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        drawn = [s.choose(np.array([-80.0, 0.0, 80.0]), rng) for _ in range(300)]
    assert set(drawn) == {0, 1, 2}


@pytest.mark.parametrize(("options", "says"), [
    ({"temperature": math.nan}, "temperature"), ({"temperature": math.inf}, "temperature"),
    ({"temperature": -math.inf}, "temperature"), ({"temperature": -1e-9}, "temperature"),
    ({"temperature": "1"}, "temperature"), ({"temperature": True}, "temperature"),
    ({"top_k": 0}, "top_k"), ({"top_k": -3}, "top_k"), ({"top_k": 2.0}, "top_k"), ({"top_k": True}, "top_k"),
    ({"top_p": math.nan}, "top_p"), ({"top_p": 0}, "top_p"), ({"top_p": -0.5}, "top_p"),
    ({"top_p": 1.0000001}, "top_p"), ({"top_p": math.inf}, "top_p"),
    ({"seed": -1}, "seed"), ({"seed": 2**32}, "seed"), ({"seed": 10**40}, "seed"), ({"seed": 1.5}, "seed"),
    ({"seed": "3"}, "seed"), ({"max_tokens": -1}, "max_tokens"), ({"max_tokens": 2.5}, "max_tokens"),
    ({"max_tokens": True}, "max_tokens"),
])
def test_bad_sampling_options_are_refused_before_the_first_piece(lm, options, says):
    with pytest.raises(ConfigError, match=says) as info:
        lm.generate("我", **options)  # not iterated: the call itself refuses
    assert_one_line(info.value)


def test_large_but_legal_sampling_options_work(lm):
    assert len(list(lm.generate("我", max_tokens=5, top_k=10**30, seed=MAX_SEED, temperature=0.7))) <= 5
    pieces = lm.generate("我", max_tokens=10**30, seed=0)  # lazy: one piece at a time
    assert isinstance(next(pieces), str)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_logits_that_are_not_numbers_cannot_be_sampled(bad):
    logits = np.array([0.1, bad, 0.3], dtype=np.float32)
    for temperature in (0, 1.0):
        s = Sampler(temperature=temperature, seed=0)
        with pytest.raises(NonFiniteError, match="the logits hold NaN or infinity"):
            s.choose(logits, s.rng())


@pytest.mark.parametrize(("args", "says"), [
    (["--temperature", "nan"], "Invalid value for '--temperature': nan is not a finite number"),
    (["--temperature", "inf"], "Invalid value for '--temperature': inf is not a finite number"),
    (["--temperature", "-inf"], "Invalid value for '--temperature'"),
    (["--top-p", "nan"], "Invalid value for '--top-p'"),
    (["--top-p", "inf"], "Invalid value for '--top-p'"),
    (["--top-k", "0"], "Invalid value for '--top-k'"),
    (["--seed", "-1"], "Invalid value for '--seed'"),
    (["--seed", str(2**32)], "Invalid value for '--seed'"),
    (["--seed", "9" * 100], "Invalid value for '--seed'"),
    (["--max-tokens", "-5"], "Invalid value for '--max-tokens'"),
])
def test_generate_refuses_bad_numbers_with_exit_2_and_prints_nothing(lm, capsys, args, says):
    capsys.readouterr()
    with pytest.raises(SystemExit) as info:
        main(["generate", str(lm.path), "--prompt", "我爱", *args])
    captured = capsys.readouterr()
    assert info.value.code == 2 and captured.out == ""
    errors = [line for line in captured.err.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and says in errors[0], captured.err


def test_generate_with_a_tiny_temperature_prints_the_greedy_text(lm, capsys):
    expected = "我爱" + "".join(lm.generate("我爱", max_tokens=12, temperature=0)) + "\n"
    capsys.readouterr()
    main_ok = ["generate", str(lm.path), "--prompt", "我爱", "--max-tokens", "12", "--temperature", "1e-300",
               "--seed", "4294967295"]
    main(main_ok)
    assert capsys.readouterr().out == expected
