"""The trainer: every task × cell learns, resume is exact, seeds decide, edge cases are handled.

Every training here is tiny (a few hundred steps at most, hidden 16) and runs on the CPU with
one thread, so the whole file takes seconds on two cores.
"""

from __future__ import annotations

import logging
import random
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from interrupts import Interrupted, interrupt_after  # noqa: E402

from rnnkit.runtime.errors import CheckpointError, ConfigError  # noqa: E402
from rnnkit.train import trainer  # noqa: E402
from rnnkit.train.checkpoint import load_checkpoint  # noqa: E402
from rnnkit.train.config import TrainConfig  # noqa: E402
from rnnkit.train.trainer import train  # noqa: E402

CELLS = ["rnn", "gru", "lstm"]
TINY = {"hidden": 16, "embed": 8, "patience": 0, "device": "cpu"}
TIMING = ("seconds", "tokens_per_second")  # wall-clock fields: the only ones two runs may differ in


# --- tiny data ------------------------------------------------------------------------------


def classify_tsv(folder: Path, n: int = 100) -> str:
    """Short texts: "好" somewhere → pos, "差" somewhere → neg. The label is not at the end."""
    rng = random.Random(0)
    filler = "我你他这那个东西书很是的了"
    lines = []
    for i in range(n):
        key = "好" if i % 2 == 0 else "差"
        chars = [rng.choice(filler) for _ in range(rng.randint(2, 5))]
        chars.insert(rng.randint(0, len(chars)), key)
        lines.append(f"{'pos' if key == '好' else 'neg'}\t{''.join(chars)}")
    path = folder / "sentiment.tsv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


def lm_text(folder: Path, n: int = 40) -> str:
    """Rotations of "abcdefghij": after the first letter every next letter is certain."""
    letters = "abcdefghij"
    path = folder / "letters.txt"
    path.write_text("\n".join(letters[i % 10:] + letters[: i % 10] for i in range(n)) + "\n", encoding="utf-8")
    return str(path)


SUBJECTS, VERBS, OBJECTS = ("我", "你", "他"), ("喜欢", "讨厌"), ("北京", "上海", "苹果")


def word_sentences() -> list[tuple[str, str, str]]:
    return [(s, v, o) for s in SUBJECTS for v in VERBS for o in OBJECTS]


def word_lm_text(folder: Path) -> str:
    path = folder / "words.txt"
    path.write_text("\n".join("".join(t) + "。" for t in word_sentences() * 2) + "\n", encoding="utf-8")
    return str(path)


def word_classify_tsv(folder: Path) -> str:
    lines = [f"{label}\t{s}觉得{o}{word}" for s, _, o in word_sentences()
             for label, word in (("pos", "很好"), ("neg", "很差"))] * 2
    path = folder / "words.tsv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


def word_tagged(folder: Path) -> str:
    tags = {**dict.fromkeys(SUBJECTS, "r"), **dict.fromkeys(VERBS, "v"), **dict.fromkeys(OBJECTS, "n")}
    lines = [" ".join(f"{w}/{tags[w]}" for w in t) + " 。/w" for t in word_sentences() * 2]
    path = folder / "pos.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


def bmes_tagged(folder: Path, n: int = 40) -> str:
    """Character B/M/E/S lines cut from a small lexicon: a tiny word segmentation task."""
    rng = random.Random(1)
    words = ["中国", "人民", "北京", "的", "是", "天安门", "我", "喜欢"]
    lines = []
    for _ in range(n):
        items = []
        for word in rng.choices(words, k=rng.randint(2, 5)):
            tags = ["S"] if len(word) == 1 else ["B", *["M"] * (len(word) - 2), "E"]
            items += [f"{ch}/{tag}" for ch, tag in zip(word, tags)]
        lines.append(" ".join(items))
    path = folder / "seg.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


def config(out: Path, **options) -> TrainConfig:
    return TrainConfig(out=str(out), **{**TINY, **options})


def comparable(history: list[dict]) -> list[dict]:
    return [{k: v for k, v in record.items() if k not in TIMING} for record in history]


def assert_same_weights(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name


# --- 1. every task × cell learns ------------------------------------------------------------


def next_letter_tagged(folder: Path, n: int = 80) -> str:
    """Tag each letter with the letter after it ("." at the end): impossible without reading ahead."""
    import random

    rng = random.Random(0)
    lines = []
    for _ in range(n):
        word = "".join(rng.choice("abc") for _ in range(rng.randint(4, 9)))
        lines.append(" ".join(f"{ch}/{nxt}" for ch, nxt in zip(word, word[1:] + ".")))
    path = folder / "next.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


def test_only_a_tagger_that_reads_ahead_can_tag_by_the_next_token(tmp_path):
    data = next_letter_tagged(tmp_path)
    accuracy = {}
    for k in (0, 1):
        result = train(config(tmp_path / f"k{k}", task="tag", data=data, lookahead=k, lr=0.03, epochs=20,
                              hidden=24, patience=0))
        assert load_checkpoint(tmp_path / f"k{k}")["train_config"]["lookahead"] == k
        accuracy[k] = result.metrics["test"]["accuracy"]
    assert accuracy[1] > 0.95
    assert accuracy[0] < 0.6  # the next letter is a coin toss among a, b, c without it


@pytest.mark.parametrize("cell", CELLS)
def test_hello_tagger_learns_ohlol(tmp_path, cell):
    result = train(config(tmp_path, task="tag", data="builtin:hello", cell=cell, lr=0.05, epochs=60))
    assert result.split["mode"] == "full" and result.metrics["selected_on"] == "validation"
    assert result.metrics["valid"]["accuracy"] == 1.0
    assert result.metrics["test"]["accuracy"] == 1.0
    assert len(result.history) == 60


@pytest.mark.parametrize("cell", CELLS)
def test_classifier_learns_a_separable_set(tmp_path, cell):
    data = classify_tsv(tmp_path)
    result = train(config(tmp_path / "run", task="classify", data=data, cell=cell, lr=0.02, epochs=25,
                          batch_size=8, valid_fraction=0.2, test_fraction=0.2))
    assert result.split["sizes"] == {"train": 60, "valid": 20, "test": 20}
    assert result.metrics["valid"]["accuracy"] >= 0.95
    assert result.metrics["test"]["accuracy"] >= 0.95
    assert result.metrics["test"]["macro_f1"] >= 0.9


@pytest.mark.parametrize("cell", CELLS)
def test_char_lm_validation_loss_falls(tmp_path, cell):
    data = lm_text(tmp_path)
    result = train(config(tmp_path / "run", task="lm", data=data, cell=cell, lr=0.03, epochs=15,
                          batch_size=4, bptt=16))
    losses = [h["valid_loss"] for h in result.history]
    assert min(losses) < 0.6 * losses[0], losses
    assert result.metrics["valid"]["loss"] == min(losses)  # the best epoch is the one kept
    vocab = len(load_checkpoint(tmp_path / "run")["vocab"])
    assert result.metrics["test"]["perplexity"] < vocab / 3.5  # guessing uniformly would score `vocab`


def test_word_level_lm(tmp_path):
    result = train(config(tmp_path / "run", task="lm", data=word_lm_text(tmp_path), level="word", lr=0.02,
                          epochs=12, batch_size=4, bptt=8))
    ckpt = load_checkpoint(tmp_path / "run")
    assert ckpt["tokenizer"]["kind"] == "word"
    assert {"喜欢", "北京", "讨厌"} <= set(ckpt["vocab"])  # words, not characters
    losses = [h["valid_loss"] for h in result.history]
    assert min(losses) < 0.6 * losses[0], losses


def test_word_level_classifier(tmp_path):
    result = train(config(tmp_path / "run", task="classify", data=word_classify_tsv(tmp_path), level="word",
                          lr=0.02, epochs=20, batch_size=8, valid_fraction=0.2, test_fraction=0.2))
    assert load_checkpoint(tmp_path / "run")["tokenizer"]["kind"] == "word"
    assert result.metrics["valid"]["accuracy"] >= 0.95
    assert result.metrics["test"]["accuracy"] >= 0.95


def test_word_level_tagger(tmp_path):
    result = train(config(tmp_path / "run", task="tag", data=word_tagged(tmp_path), level="word", lr=0.02,
                          epochs=20, batch_size=8, valid_fraction=0.2, test_fraction=0.2))
    ckpt = load_checkpoint(tmp_path / "run")
    assert ckpt["tokenizer"]["kind"] == "word" and ckpt["labels"] == ["n", "r", "v", "w"]
    assert result.metrics["test"]["accuracy"] >= 0.95


def test_bmes_segmenter_is_selected_by_word_f1(tmp_path):
    result = train(config(tmp_path / "run", task="tag", data=bmes_tagged(tmp_path), lr=0.02, epochs=30,
                          batch_size=8))  # the default lookahead (2) takes a few more epochs to learn
    assert load_checkpoint(tmp_path / "run")["tag_scheme"] == "bmes"
    assert result.history[-1]["valid_metric"] == result.history[-1]["valid"]["word_f1"]
    assert result.metrics["test"]["word_f1"] >= 0.9


# --- 2. resume ------------------------------------------------------------------------------


def resume_case(tmp_path: Path, task: str) -> dict:
    if task == "lm":
        # 32 documents of 12 tokens in 4 rows: 12 chunks of 8 tokens an epoch, the state carried.
        return {"task": "lm", "data": lm_text(tmp_path), "batch_size": 4, "bptt": 8, "lr": 0.02}
    if task == "classify":
        return {"task": "classify", "data": classify_tsv(tmp_path), "batch_size": 8, "lr": 0.02}  # 10 steps
    return {"task": "tag", "data": bmes_tagged(tmp_path, 80), "batch_size": 8, "lr": 0.02}  # 8 steps


@pytest.mark.parametrize("task", ["lm", "classify", "tag"])
def test_interrupted_run_resumed_equals_uninterrupted(tmp_path, monkeypatch, task):
    # dropout > 0 and 2 layers: the resumed run must also restore the RNG and both layers' state
    options = {**resume_case(tmp_path, task), "epochs": 3, "save_every": 4, "dropout": 0.2, "layers": 2,
               "cell": "lstm" if task == "lm" else "gru"}
    whole = train(config(tmp_path / "a", **options))
    steps_per_epoch = whole.history[0]["step"]
    snapshot = (steps_per_epoch // 4 + 1) * 4  # the first last.pt written inside epoch 2
    interrupt_at = snapshot + 2  # two steps later, still in epoch 2: those two are done again
    assert interrupt_at < 2 * steps_per_epoch
    with monkeypatch.context() as patch:
        interrupt_after(patch, interrupt_at)
        with pytest.raises(Interrupted):
            train(config(tmp_path / "b", **options))
    last = load_checkpoint(tmp_path / "b", name="last.pt")
    assert last["progress"]["step"] == snapshot and last["progress"]["epoch"] == 1
    assert last["progress"]["batch"] == snapshot - steps_per_epoch > 0
    if task == "lm":
        assert last["carry"] is not None and len(last["carry"]) == 2  # lstm: (h, c)
        assert last["carry"][0].shape == (2, 4, 16)

    resumed = train(config(tmp_path / "b", **options), resume=True)
    assert comparable(resumed.history) == comparable(whole.history)
    assert_same_weights(load_checkpoint(tmp_path / "a")["model"], load_checkpoint(tmp_path / "b")["model"])
    a_last, b_last = (load_checkpoint(tmp_path / d, name="last.pt") for d in "ab")
    assert_same_weights(a_last["model"], b_last["model"])
    assert resumed.metrics["test"] == whole.metrics["test"]
    assert resumed.metrics["best_epoch"] == whole.metrics["best_epoch"]


def test_resume_at_an_epoch_boundary(tmp_path, monkeypatch, caplog):
    options = {**resume_case(tmp_path, "classify"), "epochs": 3}
    whole = train(config(tmp_path / "a", **options))
    with monkeypatch.context() as patch, caplog.at_level(logging.WARNING, logger="rnnkit.train"):
        interrupt_after(patch, whole.history[1]["step"])  # right after epoch 2's snapshot
        with pytest.raises(Interrupted):
            train(config(tmp_path / "b", **options))
    assert any("--resume" in r.getMessage() and "last.pt" in r.getMessage() for r in caplog.records)
    resumed = train(config(tmp_path / "b", **options), resume=True)
    assert comparable(resumed.history) == comparable(whole.history)
    assert_same_weights(load_checkpoint(tmp_path / "a")["model"], load_checkpoint(tmp_path / "b")["model"])


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_resume_on_a_gpu_restores_the_cuda_generator(tmp_path, monkeypatch):
    # Dropout on a GPU draws from the CUDA generator: without it restored the masks differ.
    options = {**resume_case(tmp_path, "classify"), "epochs": 2, "save_every": 4, "dropout": 0.3,
               "device": "cuda"}
    whole = train(config(tmp_path / "a", **options))
    with monkeypatch.context() as patch:
        interrupt_after(patch, 14)
        with pytest.raises(Interrupted):
            train(config(tmp_path / "b", **options))
    cuda_rng = load_checkpoint(tmp_path / "b", name="last.pt")["rng"]["cuda"]
    assert cuda_rng and all(isinstance(t, torch.Tensor) for t in cuda_rng)
    resumed = train(config(tmp_path / "b", **options), resume=True)
    assert [h["step"] for h in resumed.history] == [h["step"] for h in whole.history]
    a, b = (load_checkpoint(tmp_path / d)["model"] for d in "ab")
    for name in a:  # cuDNN need not be bit-exact; a different dropout mask is far beyond this
        torch.testing.assert_close(a[name], b[name], rtol=0, atol=1e-4)


def test_resuming_a_finished_run_returns_its_result(tmp_path, monkeypatch):
    cfg = config(tmp_path, task="tag", data="builtin:hello", epochs=3)
    first = train(cfg)
    before = (tmp_path / "checkpoint.pt").stat().st_mtime_ns
    monkeypatch.setattr(trainer._Run, "run", lambda self: pytest.fail("a finished run must not train again"))
    again = train(cfg, resume=True)
    assert again.metrics == first.metrics
    assert comparable(again.history) == comparable(first.history)
    assert again.checkpoint == first.checkpoint
    assert set(again.files) >= {"metrics_csv", "metrics_json"}
    assert (tmp_path / "checkpoint.pt").stat().st_mtime_ns == before


def test_resume_finishes_a_run_interrupted_while_finishing(tmp_path, monkeypatch):
    # Killed after the last epoch was saved as done but before the test metrics were written.
    cfg = config(tmp_path, task="tag", data="builtin:hello", epochs=3)
    whole = train(config(tmp_path / "whole", task="tag", data="builtin:hello", epochs=3))
    with monkeypatch.context() as patch:
        def killed(self):
            raise Interrupted

        patch.setattr(trainer._Run, "_finish", killed)
        with pytest.raises(Interrupted):
            train(cfg)
    assert load_checkpoint(tmp_path, name="last.pt")["progress"]["done"]
    assert "test" not in load_checkpoint(tmp_path)["metrics"]
    resumed = train(cfg, resume=True)
    assert resumed.metrics["test"] == whole.metrics["test"]
    assert "test" in load_checkpoint(tmp_path)["metrics"]


@pytest.mark.parametrize(("option", "value"), [("lr", 0.5), ("hidden", 8), ("cell", "lstm"), ("seed", 1),
                                               ("epochs", 5)])
def test_resume_with_changed_options_names_them(tmp_path, option, value):
    options = {"task": "tag", "data": "builtin:hello", "epochs": 2}
    train(config(tmp_path, **options))
    with pytest.raises(ConfigError, match=rf"--resume .*differ: {option}\b"):
        train(config(tmp_path, **{**options, option: value}), resume=True)


def test_resume_may_change_device_and_threads(tmp_path):
    options = {"task": "tag", "data": "builtin:hello", "epochs": 2}
    train(config(tmp_path, **options))
    assert train(config(tmp_path, **{**options, "threads": 1}), resume=True).metrics["test"]["count"] == 5


def test_resume_with_changed_data_is_refused(tmp_path, monkeypatch):
    data = classify_tsv(tmp_path, 40)
    options = {"task": "classify", "data": data, "epochs": 2, "batch_size": 8, "save_every": 2}
    with monkeypatch.context() as patch:
        interrupt_after(patch, 3)
        with pytest.raises(Interrupted):
            train(config(tmp_path / "run", **options))
    with open(data, "a", encoding="utf-8") as f:
        f.write("pos\t好好好\n")
    with pytest.raises(CheckpointError, match="changed since the interrupted run"):
        train(config(tmp_path / "run", **options), resume=True)


def test_new_run_in_a_used_folder_is_refused(tmp_path):
    cfg = config(tmp_path, task="tag", data="builtin:hello", epochs=1)
    train(cfg)
    with pytest.raises(ConfigError, match=r"already holds a training run.*--resume"):
        train(cfg)
    (tmp_path / "last.pt").unlink()  # a folder with only a best checkpoint is a run too
    with pytest.raises(ConfigError, match="already holds a training run"):
        train(cfg)


def test_resume_without_a_run_says_so(tmp_path):
    with pytest.raises(CheckpointError, match=r"nothing to resume in .*: no last\.pt"):
        train(config(tmp_path / "empty", task="tag", data="builtin:hello"), resume=True)


# --- 3. seeds -------------------------------------------------------------------------------


def test_same_seed_same_weights_other_seed_other_weights(tmp_path):
    data = classify_tsv(tmp_path, 40)
    options = {"task": "classify", "data": data, "epochs": 2, "batch_size": 8, "dropout": 0.3}
    runs = [(name, seed, train(config(tmp_path / name, seed=seed, **options))) for name, seed in
            (("a", 7), ("b", 7), ("c", 8))]
    a, b, c = (load_checkpoint(tmp_path / name, name="last.pt") for name, _, _ in runs)
    assert_same_weights(a["model"], b["model"])
    assert comparable(runs[0][2].history) == comparable(runs[1][2].history)
    assert any(not torch.equal(a["model"][k], c["model"][k]) for k in a["model"])


# --- trainer edge cases ---------------------------------------------------------------------


def test_max_steps_stops_mid_epoch(tmp_path):
    data = classify_tsv(tmp_path, 60)
    result = train(config(tmp_path / "run", task="classify", data=data, epochs=5, batch_size=8, max_steps=9))
    assert [h["step"] for h in result.history] == [6, 9]  # one whole epoch, then 3 steps of the next
    last = load_checkpoint(tmp_path / "run", name="last.pt")
    assert last["progress"]["done"] and last["progress"]["step"] == 9
    assert last["scheduler"]["last_epoch"] == 9
    assert "test" in result.metrics


def test_lr_warms_up_then_decays_to_a_tenth(tmp_path):
    data = classify_tsv(tmp_path, 60)
    lr = 0.01
    result = train(config(tmp_path / "run", task="classify", data=data, epochs=4, batch_size=8, lr=lr,
                          warmup=0.25))
    lrs = [h["lr"] for h in result.history]
    assert lrs[0] == pytest.approx(lr, rel=1e-6)  # warmup (6 of 24 steps) ends with epoch 1
    assert lrs == sorted(lrs, reverse=True)
    assert lrs[-1] == pytest.approx(0.1 * lr, rel=1e-6)


def test_early_stopping_after_patience_epochs(tmp_path, monkeypatch):
    data = classify_tsv(tmp_path, 60)
    scores = iter([0.5, 0.7, 0.6, 0.7, 0.65, 0.9])

    def fake_evaluate(self, data):
        return {"loss": 1.0, "accuracy": next(scores), "count": 1}

    monkeypatch.setattr(trainer._Run, "_evaluate", fake_evaluate)
    monkeypatch.setattr(trainer._Run, "_finish", lambda self: self.history)
    history = train(config(tmp_path / "run", task="classify", data=data, epochs=6, batch_size=8, patience=3))
    assert [h["valid_metric"] for h in history] == [0.5, 0.7, 0.6, 0.7, 0.65]  # 3 without a better one
    last = load_checkpoint(tmp_path / "run", name="last.pt")
    assert last["progress"]["done"] and last["progress"]["best_epoch"] == 2
    assert load_checkpoint(tmp_path / "run")["progress"]["epoch"] == 1  # the best saved during epoch 2


def test_no_validation_split_selects_on_the_training_data(tmp_path, caplog):
    data = classify_tsv(tmp_path, 60)
    with caplog.at_level(logging.WARNING, logger="rnnkit.train"):
        result = train(config(tmp_path / "run", task="classify", data=data, epochs=3, batch_size=8, lr=0.02,
                              valid_fraction=0.0))
    assert result.split["sizes"]["valid"] == 0 and result.metrics["selected_on"] == "train"
    assert result.history[-1]["valid"]["count"] == result.split["sizes"]["train"]
    assert any("no validation data" in r.getMessage() for r in caplog.records)
    assert len(load_checkpoint(tmp_path / "run")["valid_sample"]) > 0  # export's int8 check has a sample


def test_no_validation_split_for_lm(tmp_path):
    result = train(config(tmp_path / "run", task="lm", data=lm_text(tmp_path), epochs=2, batch_size=4,
                          bptt=8, valid_fraction=0.0))
    assert all(h["valid"]["tokens"] > 0 and h["valid_loss"] > 0 for h in result.history)


def test_no_test_split_skips_the_test(tmp_path):
    for task, data in (("classify", classify_tsv(tmp_path, 40)), ("lm", lm_text(tmp_path))):
        result = train(config(tmp_path / task, task=task, data=data, epochs=1, batch_size=4, test_fraction=0.0))
        assert result.split["sizes"]["test"] == 0
        assert result.metrics["test"] == {}


def test_tie_weights_trains_an_lm(tmp_path):
    train(config(tmp_path / "run", task="lm", data=lm_text(tmp_path), epochs=1, batch_size=4, bptt=8,
                 tie_weights=True, embed=16))
    model = load_checkpoint(tmp_path / "run")["model"]
    assert torch.equal(model["embedding.weight"], model["head.weight"])


@pytest.mark.parametrize(("options", "says"), [
    ({"task": "lm", "tie_weights": True, "embed": 8}, "embed equal to --hidden"),
    ({"task": "classify", "tie_weights": True, "embed": 16}, "lm only"),
])
def test_tie_weights_is_checked_before_reading_data(tmp_path, options, says):
    with pytest.raises(ConfigError, match=says):
        config(tmp_path, data="does-not-exist.txt", **options)
