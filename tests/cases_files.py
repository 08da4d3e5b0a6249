"""Catalogue cases: checkpoints that would expand or resume wrong, locks, outputs that are not regular files."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import socket
import struct
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path

import torch
from catalogue import HELLO, Case, Ctx, hello

from rnnkit.export import export_onnx
from rnnkit.runtime.files import exclusive_lock
from rnnkit.train.config import TrainConfig
from rnnkit.train.outfolder import LOCK_NAME
from rnnkit.train.trainer import train

_CENTRAL = b"PK\x01\x02"  # a zip central directory entry; its sizes are at +20 (stored) and +24 (unpacked)


# -- checkpoints that are not what torch.save writes ----------------------------------------------
def members(path: Path) -> list[tuple[zipfile.ZipInfo, bytes]]:
    with zipfile.ZipFile(path) as z:
        return [(info, z.read(info)) for info in z.infolist()]


def repack(c: Ctx, source: Path, name: str, *, compression: int = zipfile.ZIP_STORED,
           extra: list[tuple[str, bytes]] = ()) -> Path:
    """``source``'s members written again (with ``compression``), plus ``extra`` members."""
    def make():
        items = members(source)
        prefix = items[0][0].filename.split("/")[0]
        path = c.root / name
        with warnings.catch_warnings(), zipfile.ZipFile(path, "w", compression) as z:
            warnings.simplefilter("ignore")  # zipfile warns about a duplicate name: that is the point
            for info, data in items:
                z.writestr(info.filename, data)
            for member, data in extra:
                z.writestr(f"{prefix}/{member}", data)
        return path
    return c.once(f"repack-{name}", make)


def forged_sizes(c: Ctx, name: str, sizes: dict[int, int]) -> Path:
    """``c.ckpt`` whose central directory declares ``sizes`` (member index → bytes, stored and unpacked)."""
    def make():
        data = bytearray(c.ckpt.read_bytes())
        start = 0
        for i in range(max(sizes) + 1):
            start = data.index(_CENTRAL, start + 1)
            if i in sizes:
                struct.pack_into("<II", data, start + 20, sizes[i], sizes[i])
        return c.file(name, bytes(data))
    return c.once(f"forged-{name}", make)


def legacy(c: Ctx) -> Path:
    def make():
        path = c.root / "legacy.pt"
        torch.save(torch.load(c.ckpt, weights_only=True), path, _use_new_zipfile_serialization=False)
        return path
    return c.once("legacy", make)


def bomb(c: Ctx) -> Path:
    """The tiny checkpoint repacked with deflate and 64 MiB of zeros added: a 70 KiB file."""
    return repack(c, c.ckpt, "bomb.pt", compression=zipfile.ZIP_DEFLATED, extra=[("data/99", bytes(64 << 20))])


def bombed_run(c: Ctx) -> Path:
    """A copy of the tiny run whose last.pt is repacked with deflate and 64 MiB of zeros."""
    def make():
        folder = c.root / "bombed-run"
        shutil.copytree(c.run, folder)
        packed = repack(c, c.run / "last.pt", "bomb-last.pt", compression=zipfile.ZIP_DEFLATED,
                        extra=[("data/99", bytes(64 << 20))])
        shutil.copy(packed, folder / "last.pt")
        return folder
    return c.once("bombed-run", make)


# -- runs whose last.pt was edited ----------------------------------------------------------------
def edited_run(c: Ctx, name: str, edit: Callable[[dict], None], *, done: bool | None = None,
               source: Callable[[Ctx], Path] = lambda c: c.run) -> Path:
    """A copy of a finished run whose ``last.pt`` went through ``edit`` (and ``progress.done = done``)."""
    def make():
        folder = c.root / f"edited-{name}"
        shutil.copytree(source(c), folder)
        last = torch.load(folder / "last.pt", weights_only=True)
        edit(last)
        if done is not None:
            last["progress"]["done"] = done
        torch.save(last, folder / "last.pt")
        return folder
    return c.once(f"edited-{name}", make)


def lm_run(c: Ctx) -> Path:
    """A finished tiny lm run: its last.pt carries a state (GRU, 1 layer, hidden 8)."""
    def make():
        data = c.file("lm.txt", ("我爱北京天安门，天安门上太阳升。\n" * 12).encode())
        return train(lm_config(c, c.root / "lm-run", data)).out
    return c.once("lm-run", make)


def lm_config(c: Ctx, out: Path, data: Path | None = None) -> TrainConfig:
    return TrainConfig(task="lm", data=str(data or c.root / "lm.txt"), out=str(out), epochs=1, hidden=8, embed=4,
                       bptt=8, batch_size=2, patience=0, device="cpu", threads=1)


def lm_args(c: Ctx, out: Path) -> list:
    return ["--task", "lm", "--data", c.root / "lm.txt", "--epochs", "1", "--hidden", "8", "--embed", "4",
            "--bptt", "8", "--batch-size", "2", "--patience", "0", "--device", "cpu", "--threads", "1", "--quiet",
            "--out", out, "--resume"]


def resume_case(name: str, edit: Callable[[dict], None], *, done: bool | None = None) -> Case:
    """train(resume=True) and `rnnkit train --resume` on a copy of the tiny tag run with ``edit``ed last.pt."""
    return Case(lambda c: train(hello(edited_run(c, name, edit, done=done)), resume=True),
                lambda c: ["train", *HELLO, "--out", edited_run(c, name, edit, done=done), "--resume"])


def lm_resume_case(name: str, edit: Callable[[dict], None]) -> Case:
    def folder(c: Ctx) -> Path:
        return edited_run(c, name, edit, done=False, source=lm_run)
    return Case(lambda c: train(lm_config(c, folder(c)), resume=True), lambda c: ["train", *lm_args(c, folder(c))])


def put(*keys_and_value) -> Callable[[dict], None]:
    """An edit that sets ``last[k1][k2]…`` to the last argument."""
    *keys, value = keys_and_value

    def edit(last: dict) -> None:
        target = last
        for key in keys[:-1]:
            target = target[key]
        target[keys[-1]] = value
    return edit


def reshape_moment(last: dict) -> None:
    state = last["optimizer"]["state"][0]
    state["exp_avg"] = torch.zeros(state["exp_avg"].numel() + 1)


def nan_weights(last: dict) -> None:
    last["model"] = {k: v * float("nan") for k, v in last["model"].items()}


def repeat_token(last: dict) -> None:
    last["vocab"] = [*last["vocab"][:-1], last["vocab"][-2]]


def tag_carry(last: dict) -> None:
    last["carry"] = torch.zeros(1, 4, 8)


def wide_carry(last: dict) -> None:
    last["carry"] = torch.zeros(1, last["carry"].shape[1] + 1, 8)


def nan_carry(last: dict) -> None:
    last["carry"] = last["carry"] * float("nan")


def tensor_in_history(last: dict) -> None:
    last["history"][0]["train_loss"] = torch.tensor(1.0)


# -- another writer at work -------------------------------------------------------------------------
def held_run(c: Ctx) -> Path:
    """A run folder whose lock a training run (here: this process, through another open file) holds."""
    def make():
        folder = c.root / "held-run"
        folder.mkdir()
        stack = contextlib.ExitStack()  # never closed: the lock is held for the module's life
        stack.enter_context(exclusive_lock(folder / LOCK_NAME, "held"))
        return folder, stack
    return c.once("held-run", make)[0]


def busy_target(c: Ctx) -> Path:
    """An export target whose temporary file another writer holds locked, as an export at work does."""
    def make():
        import fcntl  # POSIX only, like the lock it imitates

        fd = os.open(c.root / f".busy.onnx.abcd_123.{os.getpid()}.tmp", os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)  # the descriptor stays open: the lock stays held
        return c.root / "busy.onnx", fd
    return c.once("busy-target", make)[0]


# -- outputs that are not regular files -----------------------------------------------------------
def unix_socket(c: Ctx) -> Path:
    def make():
        path = c.root / "m.sock"
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(str(path))
        return path, sock
    return c.once("socket", make)[0]


def link_to_null(c: Ctx) -> Path:
    def make():
        path = c.root / "null.onnx"
        path.symlink_to("/dev/null")
        return path
    return c.once("link-null", make)


def run_with_fifo(c: Ctx) -> Path:
    def make():
        folder = c.root / "fifo-run"
        shutil.copytree(c.run, folder)
        (folder / "checkpoint.pt").unlink()
        os.mkfifo(folder / "checkpoint.pt")
        return folder
    return c.once("fifo-run", make)


LONG = "m" * 300 + ".onnx"


def export_case(checkpoint: Callable[[Ctx], Path], target: Callable[[Ctx], Path] = lambda c: c.fresh("m.onnx"),
                *, force: bool = False) -> Case:
    """export_onnx and `rnnkit export` of ``checkpoint`` to ``target`` (a new file unless given)."""
    return Case(lambda c: export_onnx(checkpoint(c), target(c), overwrite=force),
                lambda c: ["export", checkpoint(c), "--out", target(c), *(["--force"] if force else [])])


CASES: dict[str, Case] = {
    # checkpoints that would expand when loaded
    "E120": export_case(bomb),
    "E121": export_case(lambda c: forged_sizes(c, "huge-member.pt", {4: 0xFFFF_FFF0})),
    "E122": export_case(lambda c: forged_sizes(c, "huge-total.pt", dict.fromkeys(range(4, 9), 0x7FFF_FFFF))),
    "E123": export_case(lambda c: forged_sizes(c, "overlap.pt", {4: 1 << 20})),
    "E124": export_case(lambda c: repack(c, c.ckpt, "twice.pt", extra=[("data/0", bytes(1344))])),
    "E125": export_case(lambda c: repack(c, c.ckpt, "many.pt", extra=[(f"x/{i}", b"") for i in range(10_001)])),
    "E126": export_case(legacy),
    "E127": Case(lambda c: train(hello(bombed_run(c)), resume=True),
                 lambda c: ["train", *HELLO, "--out", bombed_run(c), "--resume"]),
    # last.pt progress, history and state that cannot be resumed
    "E128": resume_case("epoch", put("progress", "epoch", -1)),
    "E129": resume_case("step", put("progress", "step", -5)),
    "E130": resume_case("tokens", put("progress", "tokens", 12.5)),
    "E131": resume_case("best-type", put("progress", "best", "0.9")),
    "E132": resume_case("best-nan", put("progress", "best", [float("nan"), -1.0])),
    "E133": resume_case("best-epoch", put("progress", "best_epoch", 7)),
    "E134": resume_case("bad-epochs", put("progress", "bad_epochs", 5)),
    "E135": resume_case("seconds", put("progress", "seconds", float("nan"))),
    "E136": resume_case("history-short", lambda last: last["history"].pop()),
    "E137": resume_case("history-tensor", tensor_in_history),
    "E138": resume_case("rng", put("rng", "torch", torch.zeros(16, dtype=torch.uint8))),
    "E139": resume_case("moment", reshape_moment, done=False),
    "E140": resume_case("lr-inf", put("optimizer", "param_groups", 0, "lr", float("inf"))),
    "E141": resume_case("maximize", put("optimizer", "param_groups", 0, "maximize", True), done=False),
    "E142": resume_case("scheduler", put("scheduler", "last_epoch", 3)),
    "E143": resume_case("batch", put("progress", "batch", 10_000), done=False),
    "E144": resume_case("nan-weights", nan_weights, done=False),
    "E145": resume_case("vocab", repeat_token, done=False),
    "E146": resume_case("tag-carry", tag_carry),
    "E147": lm_resume_case("wide-carry", wide_carry),
    "E148": lm_resume_case("nan-carry", nan_carry),
    "E149": resume_case("base-lr", put("scheduler", "base_lrs", [1e6]), done=False),
    # one writer per output
    "E150": Case(lambda c: train(hello(held_run(c))), lambda c: ["train", *HELLO, "--out", held_run(c)]),
    "E151": export_case(lambda c: c.ckpt, busy_target),
    "E152": Case(lambda c: train(dataclasses.replace(hello(c.run), force=True), resume=True),
                 lambda c: ["train", *HELLO, "--out", c.run, "--resume", "--force"]),
    # outputs that are not regular files
    "E153": export_case(lambda c: c.ckpt, lambda c: c.fifo("m.onnx")),
    "E154": export_case(lambda c: c.ckpt, lambda c: Path("/dev/null"), force=True),
    "E155": export_case(lambda c: c.ckpt, unix_socket, force=True),
    "E156": export_case(lambda c: c.ckpt, link_to_null, force=True),
    "E157": Case(lambda c: train(hello(c.fifo("run-fifo"))), lambda c: ["train", *HELLO, "--out", c.fifo("run-fifo")]),
    "E158": Case(lambda c: train(dataclasses.replace(hello(run_with_fifo(c)), force=True)),
                 lambda c: ["train", *HELLO, "--out", run_with_fifo(c), "--force"]),
    "E159": export_case(lambda c: c.ckpt, lambda c: c.root / LONG),
}
