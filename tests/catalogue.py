"""The bad-input catalogue's machinery: docs/ERRORS.md read as rows, the files the cases work on.

``test_reliability.py`` runs every row; its ``CASES`` and the ``cases_*.py`` modules beside it
hold, per id, the library call and the command line that meet the bad input.
"""


from __future__ import annotations

import errno
import json
import os
import re
import shutil
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")

import onnx  # noqa: E402
from factory import tiny_checkpoint, tiny_onnx  # noqa: E402
from onnx import TensorProto, helper  # noqa: E402
from onnx_edits import externalize, rewrite_metadata  # noqa: E402
from snapshot_bytes import digest  # noqa: E402

from rnnkit.runtime import load_model  # noqa: E402
from rnnkit.runtime.vocab import vocab_checksum  # noqa: E402
from rnnkit.train.config import TrainConfig  # noqa: E402
from rnnkit.train.trainer import train  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
ERRORS_MD = ROOT / "docs" / "ERRORS.md"
ROW = re.compile(r"^\|\s*(E\d{2,3})\s*\|")
# -- reading the catalogue -----------------------------------------------------------------------
@dataclass(frozen=True)
class Row:
    id: str
    bad_input: str
    where: str
    raises: str | None  # exception class name, None for a CLI-only row
    exit_code: int | None  # None for a library-only row
    says: str | None  # a piece of the CLI's one Error: line


def catalogue() -> dict[str, Row]:
    rows = {}
    for line in ERRORS_MD.read_text(encoding="utf-8").splitlines():
        if not ROW.match(line):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        assert len(cells) == 6, f"a catalogue row needs 6 cells: {line}"
        ident, bad, where, raises, code, says = (c.strip("`").strip() for c in cells)
        assert ident not in rows, f"{ident} is listed twice"
        rows[ident] = Row(ident, bad, where, None if raises == "—" else raises,
                          None if code == "—" else int(code), None if says == "—" else says)
    return rows


# -- what the cases work on ----------------------------------------------------------------------
class Ctx:
    """Tiny models, checkpoints and broken files, each made on first use."""

    def __init__(self, root: Path, public: Path) -> None:
        self.root = root
        self.public = public  # a folder every user may enter (for the permission cases)
        self._made: dict[str, Any] = {}

    def once(self, key: str, make: Callable[[], Any]) -> Any:
        if key not in self._made:
            self._made[key] = make()
        return self._made[key]

    def path(self, name: str) -> Path:
        return self.root / name

    def file(self, name: str, data: bytes) -> Path:
        path = self.root / name
        path.write_bytes(data)
        return path

    @property
    def lm(self) -> Path:
        return self.once("lm", lambda: tiny_onnx(self.root / "lm", task="lm", cell="gru"))

    @property
    def clf(self) -> Path:
        return self.once("clf", lambda: tiny_onnx(self.root / "clf", task="classify", cell="lstm"))

    @property
    def lm2(self) -> Path:
        return self.once("lm2", lambda: tiny_onnx(self.root / "lm2", task="lm", cell="gru", seed=1))

    @property
    def tagger(self) -> Path:
        return self.once("tagger", lambda: tiny_onnx(self.root / "tagger", task="tag", cell="gru", lookahead=1))

    def model(self, name: str):
        return self.once(f"model-{name}", lambda: load_model(getattr(self, name)))

    @property
    def ckpt(self) -> Path:
        return self.once("ckpt", lambda: tiny_checkpoint(self.root / "ckpt", task="classify", cell="gru"))

    def ckpt_with(self, name: str, **changes) -> Path:
        """A copy of ``ckpt`` with fields replaced."""
        def make():
            payload = torch.load(self.ckpt, weights_only=True)
            payload.update(changes)
            path = self.root / f"{name}.pt"
            torch.save(payload, path)
            return path
        return self.once(f"ckpt-{name}", make)

    def with_metadata(self, name: str, **changes: str | None) -> Path:
        """A copy of ``clf`` whose ``rnnkit.<key>`` metadata values are replaced (None removes)."""
        return self.once(f"meta-{name}", lambda: rewrite_metadata(self.clf, self.root / f"{name}.onnx", **changes))

    def external(self, name: str, location: str) -> Path:
        """A copy of ``clf`` whose embedding is stored as external data at ``location``."""
        def make():
            path, weights = externalize(self.clf, self.root / f"ext-{name}", location)
            (self.root / "outside.bin").write_bytes(weights)
            return path
        return self.once(f"ext-{name}", make)

    def graph(self, name: str, tokens_type: int, state_shape: list) -> Path:
        """A hand-made graph with ``clf``'s metadata: (tokens, h0, c0) → (h0, h0, c0) by Identity."""
        def make():
            props = {p.key: p.value for p in onnx.load(str(self.clf)).metadata_props}
            inputs = [helper.make_tensor_value_info("tokens", tokens_type, ["b", "s"]),
                      helper.make_tensor_value_info("h0", TensorProto.FLOAT, state_shape),
                      helper.make_tensor_value_info("c0", TensorProto.FLOAT, state_shape)]
            outputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in ("logits", "hn", "cn")]
            nodes = [helper.make_node("Identity", [a], [b]) for a, b in (("h0", "logits"), ("h0", "hn"), ("c0", "cn"))]
            model = helper.make_model(helper.make_graph(nodes, "g", inputs, outputs),
                                      opset_imports=[helper.make_opsetid("", 17)])
            for key, value in props.items():
                entry = model.metadata_props.add()
                entry.key, entry.value = key, value
            path = self.root / f"{name}.onnx"
            onnx.save(model, str(path))
            return path
        return self.once(f"graph-{name}", make)

    def locked_model(self, name: str, folder_mode: int, file_mode: int) -> Path:
        def make():
            folder = self.public / name
            folder.mkdir(mode=0o755)
            path = folder / "model.onnx"
            shutil.copy(self.clf, path)
            path.chmod(file_mode)
            folder.chmod(folder_mode)
            return path
        return self.once(f"locked-{name}", make)

    def read_only_folder(self, name: str) -> Path:
        def make():
            folder = self.public / name
            folder.mkdir(mode=0o755)
            folder.chmod(0o555)
            return folder
        return self.once(f"ro-{name}", make)

    def fifo(self, name: str) -> Path:
        def make():
            os.mkfifo(self.root / name)
            return self.root / name
        return self.once(f"fifo-{name}", make)

    def locked_ckpt(self) -> Path:
        return self._ckpt_copy("locked.pt", 0o000)

    @property
    def public_ckpt(self) -> Path:
        return self._ckpt_copy("checkpoint.pt", 0o644)

    def _ckpt_copy(self, name: str, mode: int) -> Path:
        """The tiny checkpoint copied into the shared folder as ``name`` with permissions ``mode``."""
        def make():
            path = self.public / name
            shutil.copy(self.ckpt, path)
            path.chmod(mode)
            return path
        return self.once(f"ckpt-{name}", make)

    @property
    def run(self) -> Path:
        """A finished tiny training run (builtin:hello, 2 epochs)."""
        return self.once("run", lambda: train(hello(self.root / "run")).out)

    def damaged_run(self) -> Path:
        def make():
            folder = self.root / "damaged-run"
            shutil.copytree(self.run, folder)
            last = torch.load(folder / "last.pt", weights_only=True)
            last["progress"]["epoch"] = "2"
            torch.save(last, folder / "last.pt")
            return folder
        return self.once("damaged-run", make)

    def snapshot(self, name: str = "lm") -> bytes:
        stream = self.model(name).stream()
        stream.feed("我爱北京")
        return stream.snapshot()

    def tag_snapshot(self) -> bytes:
        ts = self.model("tagger").tag_stream()
        ts.feed("我爱北京")
        return ts.snapshot()

    def fresh(self, name: str) -> Path:
        """A new, not yet existing path (one per call): ``m.onnx`` → ``m-7.onnx``."""
        n = self._made.setdefault("fresh", [0])
        n[0] += 1
        stem, dot, suffix = name.partition(".")
        return self.root / f"{stem}-{n[0]}{dot}{suffix}"

    @property
    def folder_named_like_data(self) -> Path:
        def make():
            (self.root / "folder.tsv").mkdir()
            return self.root / "folder.tsv"
        return self.once("folder.tsv", make)


def hello(out: Path, epochs: int = 2) -> TrainConfig:
    return TrainConfig(task="tag", data="builtin:hello", out=str(out), epochs=epochs, hidden=8, embed=4,
                       patience=0, device="cpu", threads=1)


HELLO = ["--task", "tag", "--data", "builtin:hello", "--epochs", "2", "--hidden", "8", "--embed", "4",
         "--patience", "0", "--device", "cpu", "--threads", "1", "--quiet"]


def disk_full(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def fill_disk_on_write(monkeypatch, suffix: str) -> None:
    """Writes (``write_bytes``/``write_text``/``shutil.copyfile``) of temporary files for targets ending in
    ``suffix`` fail."""
    real_copy = shutil.copyfile

    def failing_copy(src, dst, **kwargs):
        name = Path(dst).name
        if name.endswith(".tmp") and f"{suffix}." in name:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(dst))
        return real_copy(src, dst, **kwargs)

    monkeypatch.setattr(shutil, "copyfile", failing_copy)
    for method in ("write_bytes", "write_text"):
        real = getattr(Path, method)

        def failing(self, *args, _real=real, **kwargs):
            if self.name.endswith(".tmp") and f"{suffix}." in self.name:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self))
            return _real(self, *args, **kwargs)

        monkeypatch.setattr(Path, method, failing)


def malicious_pickle(path: Path, marker: Path) -> Path:
    """A torch file whose unpickling would create ``marker`` (os.mkdir) if it were allowed to run code."""
    class Payload:
        def __reduce__(self):
            return os.mkdir, (str(marker),)

    torch.save({"rnnkit_checkpoint": 1, "model": Payload()}, path)
    return path


def snapshot_with_header(data: bytes, **changes: Any) -> bytes:
    """``data`` with header fields replaced and its checksum recomputed: only the fields can be refused."""
    _, version, size = struct.unpack_from("<8sHI", data)
    header = json.loads(data[14 : 14 + size])
    header.update(changes)
    raw = json.dumps(header).encode()
    data = struct.pack("<8sHI", b"RNNKSNAP", version, len(raw)) + raw + data[14 + size : -16]
    return data + digest(data, version)


# -- the cases: id → the library call and the command line that meet the bad input ---------------
@dataclass(frozen=True)
class Case:
    api: Callable[[Ctx], Any] | None = None
    cli: Callable[[Ctx], list[str]] | None = None
    stdin: bytes | None = None
    patch: Callable[[Any], None] | None = None  # given monkeypatch, before both calls
    nobody: bool = False  # run both calls as an unprivileged user…
    prepare: Callable[[Ctx], Any] | None = None  # …after making their files with this



def own_stream_in_a_batch(model) -> Any:
    ts = model.tag_stream()
    return model.batcher().feed([ts, ts.stream], ["我爱", "北京"])


def plain_onnx(path: Path) -> Path:
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "plain",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def long_token_model(c: Ctx) -> Path:
    tokens = [*c.model("clf").vocab.tokens[:-1], "长" * 513]  # same size, one token too long, checksum kept right
    return c.with_metadata("longtoken", vocab=json.dumps(tokens, ensure_ascii=False),
                           vocab_sha256=vocab_checksum(tokens))


def edited_vocab_model(c: Ctx) -> Path:
    tokens = c.model("clf").vocab.tokens
    tokens[4], tokens[5] = tokens[5], tokens[4]
    return c.with_metadata("swapped", vocab=json.dumps(tokens, ensure_ascii=False))


def grown_ckpt(c: Ctx) -> Path:
    config = torch.load(c.ckpt, weights_only=True)["model_config"]
    return c.ckpt_with("grown", model_config={**config, "hidden": config["hidden"] + 1})


def nan_ckpt(c: Ctx) -> Path:
    weights = torch.load(c.ckpt, weights_only=True)["model"]
    return c.ckpt_with("nan", model={k: v * float("nan") for k, v in weights.items()})


def data_config(c: Ctx, data: Path) -> TrainConfig:
    return TrainConfig(task="classify", data=str(data), out=str(c.fresh("run")), epochs=1, hidden=8, embed=4,
                       device="cpu")


def data_args(c: Ctx, data: Path) -> list:
    return ["--task", "classify", "--data", data, "--out", c.fresh("run"), "--epochs", "1", "--hidden", "8",
            "--device", "cpu", "--quiet"]


