"""Issue 11, checkpoints: no decompression bomb reaches torch, and no edited last.pt resumes.

The catalogue rows E120–E149 (docs/ERRORS.md) run one file each through the library and the
CLI; here the zip checks meet their limits exactly, and every field of a real mid-run
``last.pt`` (an LSTM lm, so it carries a state) is broken in turn: each one is refused in one
line, before anything in the folder changes, and the unedited file still resumes.
"""

from __future__ import annotations

import contextlib
import copy
import math
import shutil
import signal
import struct
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from factory import tiny_checkpoint  # noqa: E402

from rnnkit.export import export_onnx  # noqa: E402
from rnnkit.runtime.errors import CheckpointError  # noqa: E402
from rnnkit.train import checkpoint as ckpt_module  # noqa: E402
from rnnkit.train import trainer  # noqa: E402
from rnnkit.train.checkpoint import load_checkpoint  # noqa: E402
from rnnkit.train.config import TrainConfig  # noqa: E402
from rnnkit.train.resume_checks import check_resumable  # noqa: E402
from rnnkit.train.trainer import train  # noqa: E402


def repacked(source: Path, target: Path, compression: int = zipfile.ZIP_STORED, extra=()) -> Path:
    with zipfile.ZipFile(source) as z:
        items = [(i.filename, z.read(i)) for i in z.infolist()]
    prefix = items[0][0].split("/")[0]
    with zipfile.ZipFile(target, "w", compression) as z:
        for name, data in items:
            z.writestr(name, data)
        for name, data in extra:
            z.writestr(f"{prefix}/{name}", data)
    return target


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    return tiny_checkpoint(tmp_path_factory.mktemp("ckpt"))


# -- the zip, before torch ---------------------------------------------------------------------------
def test_torch_would_unpack_a_deflated_bomb_and_rnnkit_refuses_it_unread(ckpt, tmp_path, monkeypatch):
    bomb = repacked(ckpt, tmp_path / "bomb.pt", zipfile.ZIP_DEFLATED, [("data/99", bytes(32 << 20))])
    assert bomb.stat().st_size < 100_000
    assert torch.load(bomb, weights_only=True)["task"] == "classify"  # torch itself reads compressed members

    def no_torch_load(*args, **kwargs):
        raise AssertionError("torch.load ran on a file the zip check should have refused")

    monkeypatch.setattr(torch, "load", no_torch_load)
    for call in (lambda: load_checkpoint(bomb), lambda: export_onnx(bomb, tmp_path / "m.onnx")):
        with pytest.raises(CheckpointError, match="holds a compressed member"):
            call()
    assert not (tmp_path / "m.onnx").exists()


def test_real_checkpoints_pass_the_zip_check_with_room(ckpt, tmp_path):
    run = train(TrainConfig(task="tag", data="builtin:hello", out=str(tmp_path / "run"), epochs=2, hidden=8,
                            embed=4, patience=0, device="cpu"))
    for path in (ckpt, run.out / "checkpoint.pt", run.out / "last.pt"):
        with zipfile.ZipFile(path) as z:
            infos = z.infolist()
        assert all(i.compress_type == zipfile.ZIP_STORED for i in infos)
        assert sum(i.file_size for i in infos) <= path.stat().st_size  # the ratio check has no false alarm
        assert len(infos) < ckpt_module.MAX_MEMBERS // 100


@pytest.mark.parametrize("cap,says", [("MAX_MEMBER_BYTES", "allowed"), ("MAX_CHECKPOINT_BYTES", "allowed"),
                                      ("MAX_MEMBERS", "a checkpoint may have")])
def test_each_cap_holds_at_its_limit_and_refuses_one_beyond(ckpt, monkeypatch, cap, says):
    with zipfile.ZipFile(ckpt) as z:
        infos = z.infolist()
    exact = {"MAX_MEMBER_BYTES": max(i.file_size for i in infos),
             "MAX_CHECKPOINT_BYTES": sum(i.file_size for i in infos), "MAX_MEMBERS": len(infos)}[cap]
    monkeypatch.setattr(ckpt_module, cap, exact)
    assert load_checkpoint(ckpt)["task"] == "classify"
    monkeypatch.setattr(ckpt_module, cap, exact - 1)
    with pytest.raises(CheckpointError, match=says):
        load_checkpoint(ckpt)


def _central_entries(data: bytes) -> list[int]:
    starts, i = [], data.find(b"PK\x01\x02")
    while i >= 0:
        starts.append(i)
        i = data.find(b"PK\x01\x02", i + 1)
    return starts


@pytest.mark.parametrize("forge,says", [
    (lambda data, at: struct.pack_into("<I", data, at + 24, 5000), "declares 5,000 bytes but stores"),
    (lambda data, at: struct.pack_into("<II", data, at + 20, 3 << 30, 3 << 30), "of 3.0 GiB, more than"),
    (lambda data, at: struct.pack_into("<H", data, at + 10, zipfile.ZIP_LZMA), "holds a compressed member"),
])
def test_a_forged_directory_entry_is_refused(ckpt, tmp_path, forge, says):
    data = bytearray(ckpt.read_bytes())
    forge(data, _central_entries(bytes(data))[5])
    path = tmp_path / "forged.pt"
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=says):
        load_checkpoint(path)


def test_legacy_and_disguised_files_never_reach_torchs_legacy_reader(ckpt, tmp_path):
    payload = torch.load(ckpt, weights_only=True)
    legacy = tmp_path / "legacy.pt"
    torch.save(payload, legacy, _use_new_zipfile_serialization=False)
    polyglot = tmp_path / "polyglot.pt"  # a legacy pickle with a real zip appended: zipfile sees a zip
    polyglot.write_bytes(legacy.read_bytes() + ckpt.read_bytes())
    assert zipfile.is_zipfile(polyglot)
    prefixed = tmp_path / "prefixed.pt"
    prefixed.write_bytes(b"junk" + ckpt.read_bytes())
    for path, says in ((legacy, "legacy"), (polyglot, "legacy"), (prefixed, "is not a torch checkpoint")):
        with pytest.raises(CheckpointError, match=says):
            load_checkpoint(path)


# -- last.pt, field by field -------------------------------------------------------------------------
def lm_text(folder: Path) -> str:
    path = folder / "letters.txt"
    path.write_text("\n".join("abcdefghij"[i % 10:] + "abcdefghij"[: i % 10] for i in range(40)) + "\n")
    return str(path)


class Interrupted(KeyboardInterrupt):
    pass


@pytest.fixture(scope="module")
def interrupted(tmp_path_factory) -> tuple[Path, TrainConfig]:
    """An LSTM lm run stopped mid-epoch 2, just after a snapshot: last.pt carries (h, c)."""
    root = tmp_path_factory.mktemp("interrupted")
    config = TrainConfig(task="lm", data=lm_text(root), out=str(root / "run"), cell="lstm", layers=2, hidden=8,
                         embed=4, batch_size=4, bptt=8, epochs=3, save_every=4, patience=0, device="cpu")
    step, done = trainer._Run._step, {"n": 0}

    def stop_at_16(self, batch):
        if done["n"] == 16:
            raise Interrupted
        done["n"] += 1
        return step(self, batch)

    patch = pytest.MonkeyPatch()
    patch.setattr(trainer._Run, "_step", stop_at_16)
    try:
        with pytest.raises(Interrupted):
            train(config)
    finally:
        patch.undo()
    last = load_checkpoint(root / "run", name="last.pt")
    assert last["progress"]["epoch"] == 1 and last["progress"]["batch"] > 0 and len(last["carry"]) == 2
    return root / "run", config


def progress(key, value) -> Callable[[dict], None]:
    return lambda last: last["progress"].__setitem__(key, value)


def group(key, value) -> Callable[[dict], None]:
    return lambda last: last["optimizer"]["param_groups"][0].__setitem__(key, value)


def moment(key, change) -> Callable[[dict], None]:
    return lambda last: last["optimizer"]["state"][0].__setitem__(key, change(last["optimizer"]["state"][0][key]))


def both_steps(n: int) -> Callable[[dict], None]:
    def edit(last):
        last["progress"]["step"] = n
        last["scheduler"]["last_epoch"] = n
    return edit


def without_progress(key) -> Callable[[dict], None]:
    return lambda last: last["progress"].pop(key)


def scheduler(key, value) -> Callable[[dict], None]:
    return lambda last: last["scheduler"].__setitem__(key, value)


def shared(width: int, levels: int) -> list:
    """A list holding one list ``width`` times, ``levels`` deep: a pickle stores it in a few hundred
    bytes (it refers back to what it holds), and a walk of it as a tree meets ``width**levels`` values."""
    value: list = [1.0]
    for _ in range(levels):
        value = [value] * width
    return value


EDITS = {
    "no loss_count": (without_progress("loss_count"), "progress.loss_count is missing or of the wrong type"),
    "done as 1": (progress("done", 1), "progress.done is missing or of the wrong type"),
    "seconds as True": (progress("seconds", True), "progress.seconds is missing or of the wrong type"),
    "epoch as text": (progress("epoch", "1"), "progress.epoch is missing or of the wrong type"),
    "step beyond counting": (progress("step", 1 << 60), "progress.step is 1152921504606846976, not a count"),
    "negative tokens": (progress("tokens", -1), "progress.tokens is -1"),
    "loss_sum inf": (progress("loss_sum", math.inf), "progress.loss_sum is inf"),
    "negative loss_sum": (progress("loss_sum", -3.0), "progress.loss_sum is -3.0"),
    "more losses than batches": (progress("loss_count", 10_000), "progress.loss_count is 10000, more than"),
    "best without best_epoch": (progress("best_epoch", None), "disagree"),
    "best of three": (progress("best", [1.0, 2.0, 3.0]), "progress.best is not a pair of finite numbers"),
    "best of booleans": (progress("best", [True, False]), "progress.best is not a pair of finite numbers"),
    "best -inf": (progress("best", [-math.inf, 0.0]), "progress.best is not a pair of finite numbers"),
    "best_epoch 0": (progress("best_epoch", 0), "progress.best_epoch is 0"),
    "fewer steps than epochs": (both_steps(0), "progress.step is 0, fewer than the 1 epochs done"),
    "history of numbers": (lambda last: last.__setitem__("history", [1]), "history[0] is not the record of epoch 1"),
    "history out of order": (lambda last: last["history"][0].__setitem__("epoch", 5),
                             "history[0] is not the record of epoch 1"),
    "history holding a set": (lambda last: last["history"][0].__setitem__("valid", {"a": {1, 2}}),
                              "holds something other than plain numbers"),
    "history sharing one list 50**6 times": (lambda last: last["history"][0].__setitem__("x", shared(50, 6)),
                                             "history[0] holds the same list or dict twice"),
    "history records sharing a dict": (lambda last: last["history"][0].__setitem__("valid", last["history"][0]),
                                       "history[0] holds the same list or dict twice"),
    "history record of 20,000 values": (lambda last: last["history"][0].__setitem__("x", list(range(20_000))),
                                        "history[0] holds more than 10,000 values"),
    "seconds beyond any float": (progress("seconds", 2**2000), "progress.seconds is 1148130695274254524…, not a"),
    "rng of int64": (lambda last: last["rng"].__setitem__("torch", last["rng"]["torch"].long()), "rng.torch"),
    "rng.cuda as text": (lambda last: last["rng"].__setitem__("cuda", "gpu"), "rng.cuda is not"),
    "moment NaN": (moment("exp_avg", lambda t: t * math.nan), "optimizer.state[0] holds NaN or infinity"),
    "second moment negative": (moment("exp_avg_sq", lambda t: -t - 1), "exp_avg_sq holds negative values"),
    "optimizer step ahead": (moment("step", lambda t: t + 1_000_000), "is not a step of this run"),
    "moment as a list": (moment("exp_avg", lambda t: t.tolist()), "optimizer.state[0] is not a dict of tensors"),
    "betas beyond 1": (group("betas", (0.9, 1.5)), "betas is not a pair in [0, 1)"),
    "eps NaN": (group("eps", math.nan), "optimizer.param_groups[0].eps is nan"),
    "negative weight decay": (group("weight_decay", -1.0), "weight_decay is -1.0"),
    "no param groups": (lambda last: last["optimizer"].__setitem__("param_groups", []), "is not an optimizer's"),
    "scheduler step as text": (lambda last: last["scheduler"].__setitem__("last_epoch", "16"),
                               "scheduler.last_epoch is '16'"),
    "base lr NaN": (lambda last: last["scheduler"].__setitem__("base_lrs", [math.nan]), "scheduler.base_lrs"),
    "last lr inf": (lambda last: last["scheduler"].__setitem__("_last_lr", [math.inf]), "scheduler._last_lr"),
    # LambdaLR.load_state_dict copies every key onto the scheduler: "optimizer" broke its first step
    "scheduler holding an optimizer": (scheduler("optimizer", 0), "scheduler holds 'optimizer', which a"),
    "scheduler holding a stranger": (scheduler("lr_lambda", "x"), "scheduler holds 'lr_lambda'"),
    "scheduler step count as a float": (scheduler("_step_count", 3.5), "scheduler._step_count is 3.5"),
    "scheduler flag as text": (scheduler("_is_initial", "no"), "scheduler._is_initial is 'no', not True or False"),
    "scheduler lambda with state": (scheduler("lr_lambdas", [{"x": 1}]), "scheduler.lr_lambdas is not the state"),
    "scheduler lambdas as a tensor": (scheduler("lr_lambdas", torch.zeros(1)), "scheduler.lr_lambdas is not"),
    "carry of one tensor for lstm": (lambda last: last.__setitem__("carry", last["carry"][0]),
                                     "carry is not the state of a 'lstm' cell"),
    "carry float64": (lambda last: last.__setitem__("carry", tuple(t.double() for t in last["carry"])),
                      "carry is not float32 tensors"),
    "carry (h, c) of two shapes": (lambda last: last.__setitem__("carry", (last["carry"][0], last["carry"][1][:1])),
                                   "carry is not float32 tensors"),
    "fingerprint as a number": (lambda last: last["data"].__setitem__("fingerprint", 7), "data.fingerprint"),
    # these need the model and the data (check_resume_fits)
    "moment of another parameter": (lambda last: last["optimizer"]["state"].__setitem__(99, {}),
                                    "optimizer.state names parameter 99"),
    "a parameter missing": (lambda last: last["optimizer"]["param_groups"][0]["params"].pop(),
                            "the optimizer holds"),
    "weight decay not the run's": (group("weight_decay", 0.5), "weight_decay is 0.5, this run's is 0.01"),
    "amsgrad switched on": (group("amsgrad", True), "amsgrad is True"),
    "amsgrad as a tensor": (group("amsgrad", torch.zeros(2)), "amsgrad is a Tensor, this run's is False"),
    "foreach as text": (group("foreach", "yes"), "foreach is 'yes', this run's is None"),
    "betas as a tensor": (group("betas", torch.tensor([0.9, 0.999])), "betas is not a pair in [0, 1)"),
    "maximize as 1": (group("maximize", 1), "maximize is 1, this run's is False"),
    "step beyond the plan": (both_steps(10_000), "progress.step is 10000, more than the"),
    "carry of other rows": (lambda last: last.__setitem__("carry", tuple(t[:, :2] for t in last["carry"])),
                            "carry has shape (2, 2, 8), the model and data need (2, 4, 8)"),
    "weights infinite": (lambda last: last["model"].__setitem__(
        next(iter(last["model"])), last["model"][next(iter(last["model"]))] * math.inf), "the weights hold NaN"),
    "a weight missing": (lambda last: last["model"].pop("embedding.weight"),
                         "embedding.weight is missing, the config needs"),
}


@contextlib.contextmanager
def within(seconds: int):
    """Fail (rather than hang) a block that takes longer than ``seconds``, where SIGALRM exists."""
    if not hasattr(signal, "SIGALRM"):
        yield
        return

    def late(signum, frame):
        raise AssertionError(f"took more than {seconds} s")

    previous = signal.signal(signal.SIGALRM, late)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def edited_copy(source, tmp_path, edit):
    """A copy of the interrupted run ``source`` whose last.pt was changed by ``edit(payload)``."""
    out = tmp_path / "run"
    shutil.copytree(source, out)
    last = torch.load(out / "last.pt", weights_only=True)
    edit(last)
    torch.save(last, out / "last.pt")
    return out


@pytest.mark.parametrize("name", EDITS)
def test_an_edited_last_pt_is_refused_before_anything_changes(interrupted, tmp_path, name):
    source, config = interrupted
    edit, says = EDITS[name]
    out = edited_copy(source, tmp_path, edit)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    with pytest.raises(CheckpointError, match="cannot be resumed: ") as info, within(60):
        train(TrainConfig(**{**config.to_dict(), "out": str(out)}), resume=True)
    assert says in str(info.value) and "\n" not in str(info.value) and len(str(info.value)) < 600
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_the_unedited_last_pt_resumes_and_older_optimizer_groups_still_do(interrupted, tmp_path):
    source, config = interrupted
    out = tmp_path / "run"
    shutil.copytree(source, out)
    last = torch.load(out / "last.pt", weights_only=True)
    for key in ("decoupled_weight_decay", "fused"):  # options a torch of a year ago did not write
        last["optimizer"]["param_groups"][0].pop(key, None)
    torch.save(last, out / "last.pt")
    result = train(TrainConfig(**{**config.to_dict(), "out": str(out)}), resume=True)
    assert len(result.history) == 3


def test_labels_that_repeat_cannot_be_resumed(interrupted):
    last = copy.deepcopy(load_checkpoint(interrupted[0], name="last.pt"))
    last.update(task="classify", labels=["pos", "pos"], carry=None)
    with pytest.raises(CheckpointError, match="labels are empty or repeat a label"):
        check_resumable(last, "last.pt")


def test_a_history_of_shared_lists_is_a_small_file(interrupted, tmp_path):
    last = torch.load(interrupted[0] / "last.pt", weights_only=True)
    small = tmp_path / "small.pt"
    torch.save({"x": shared(50, 6)}, small)
    assert small.stat().st_size < 4_000  # what the edit above adds: a kilobyte or two
    last["history"][0]["x"] = shared(50, 7)  # 50**7 values as a tree, 7 lists in the file
    with within(20), pytest.raises(CheckpointError, match="holds the same list or dict twice"):
        check_resumable(last, "last.pt")


def test_a_payload_that_shares_lists_elsewhere_loads_at_once(ckpt, tmp_path):
    payload = torch.load(ckpt, weights_only=True)
    payload["metrics"] = {"x": shared(50, 7)}  # the tensor check walks every list, each once
    torch.save(payload, tmp_path / "shared.pt")
    with within(20):
        assert load_checkpoint(tmp_path / "shared.pt")["task"] == "classify"


def stride_0(shape: tuple[int, ...], dtype=torch.float32) -> torch.Tensor:
    """A tensor of ``shape`` over a storage of one element (every stride 0): torch.save keeps it so."""
    return torch.zeros(1, dtype=dtype).as_strided(shape, (0,) * len(shape))


STRIDES = {  # (edit, the elements the tensor claims)
    "a moment": (moment("exp_avg", lambda t: stride_0((2**30,))), 2**30),
    "the carried state": (lambda last: last.__setitem__("carry", (stride_0((2, 2**26, 8)),) * 2), 2**30),
    "a weight": (lambda last: last["model"].__setitem__("embedding.weight",
                                                         stride_0(tuple(last["model"]["embedding.weight"].shape))),
                 None),
    "the random state": (lambda last: last["rng"].__setitem__("torch", stride_0((5056,), torch.uint8)), 5056),
    "a moment's step": (moment("step", lambda t: stride_0((2**30,))), 2**30),
}


@pytest.mark.parametrize("name", STRIDES)
def test_a_tensor_claiming_more_than_its_storage_is_refused_before_any_element_is_read(interrupted, tmp_path,
                                                                                        name):
    source, config = interrupted
    edit, claimed = STRIDES[name]
    out = edited_copy(source, tmp_path, edit)
    assert (out / "last.pt").stat().st_size < 2 * (source / "last.pt").stat().st_size  # a few bytes of storage
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    with pytest.raises(CheckpointError) as info:
        train(TrainConfig(**{**config.to_dict(), "out": str(out)}), resume=True)
    says = str(info.value)
    assert "is damaged or was edited: tensor checkpoint." in says and " over a storage of " in says, says
    if claimed is not None:
        assert f"claims {claimed:,} elements" in says
    assert "\n" not in says and len(says) < 600
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


@pytest.mark.parametrize("make,says", [
    (lambda shape: stride_0(shape), "over a storage of 4 bytes"),
    (lambda shape: torch.empty(shape, device="meta"), "holds no data (a meta tensor)"),
    (lambda shape: torch.zeros(shape).to_sparse(), "is not dense (torch.sparse_coo)"),
])
def test_a_best_checkpoint_with_a_forged_weight_is_refused_by_load_and_export(ckpt, tmp_path, make, says):
    payload = torch.load(ckpt, weights_only=True)
    name = next(iter(payload["model"]))
    payload["model"][name] = make(tuple(payload["model"][name].shape))
    forged = tmp_path / "forged.pt"
    torch.save(payload, forged)
    for call in (lambda: load_checkpoint(forged), lambda: export_onnx(forged, tmp_path / "m.onnx")):
        with pytest.raises(CheckpointError, match=f"tensor checkpoint.model.{name} "):
            call()
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(forged)
    assert says in str(info.value)
    assert not (tmp_path / "m.onnx").exists()
