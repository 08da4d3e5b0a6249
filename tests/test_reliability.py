"""Issue 6, the bad-input catalogue: every row of docs/ERRORS.md is run here, so the doc cannot drift.

Each row of the catalogue has an id (``E07``), the bad input, the exception the library raises
and what the CLI prints (exit code and a piece of its one ``Error:`` line). ``CASES`` below
holds, for every id, the call that feeds that bad input to the library and the command line
that feeds it to ``rnnkit``; ``test_catalogue_case[E07]`` runs both and checks the row.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import json
import os
import re
import shutil
import struct
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import onnx  # noqa: E402
from conftest import unprivileged  # noqa: E402
from factory import tiny_checkpoint, tiny_onnx  # noqa: E402
from onnx import TensorProto, helper  # noqa: E402
from onnx_edits import externalize, rewrite_metadata  # noqa: E402

from rnnkit.export import export_onnx  # noqa: E402
from rnnkit.runtime import RnnkitError, load_model  # noqa: E402
from rnnkit.runtime.cli import main  # noqa: E402
from rnnkit.runtime.contract import MAX_VALUE_BYTES, MAX_VOCAB  # noqa: E402
from rnnkit.runtime.vocab import vocab_checksum  # noqa: E402
from rnnkit.train.checkpoint import load_checkpoint  # noqa: E402
from rnnkit.train.config import TrainConfig  # noqa: E402
from rnnkit.train.trainer import train  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
ERRORS_MD = ROOT / "docs" / "ERRORS.md"
ROW = re.compile(r"^\|\s*(E\d{2})\s*\|")
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
    return data + hashlib.blake2b(data, digest_size=16).digest()


# -- the cases: id → the library call and the command line that meet the bad input ---------------
@dataclass(frozen=True)
class Case:
    api: Callable[[Ctx], Any] | None = None
    cli: Callable[[Ctx], list[str]] | None = None
    stdin: bytes | None = None
    patch: Callable[[Any], None] | None = None  # given monkeypatch, before both calls
    nobody: bool = False  # run both calls as an unprivileged user…
    prepare: Callable[[Ctx], Any] | None = None  # …after making their files with this


def _flip(data: bytes) -> bytes:
    i = len(data) - 40  # inside the float32 arrays, not the header
    return data[:i] + bytes([data[i] ^ 0x01]) + data[i + 1 :]


CASES: dict[str, Case] = {
    # model files
    "E01": Case(lambda c: load_model(c.path("missing.onnx")), lambda c: ["inspect", c.path("missing.onnx")]),
    "E02": Case(lambda c: load_model(c.root), lambda c: ["inspect", c.root]),
    "E03": Case(lambda c: load_model(c.file("junk.onnx", bytes(range(256)) * 20)),
                lambda c: ["inspect", c.file("junk.onnx", bytes(range(256)) * 20)]),
    "E04": Case(lambda c: load_model(c.file("half.onnx", c.clf.read_bytes()[: c.clf.stat().st_size // 2])),
                lambda c: ["classify", c.path("half.onnx"), "x"]),
    "E05": Case(lambda c: load_model(c.file("empty.onnx", b"")), lambda c: ["inspect", c.file("empty.onnx", b"")]),
    "E06": Case(lambda c: load_model(c.locked_model("unreadable", 0o755, 0o000)),
                lambda c: ["inspect", c.locked_model("unreadable", 0o755, 0o000)], nobody=True,
                prepare=lambda c: c.locked_model("unreadable", 0o755, 0o000)),
    "E07": Case(lambda c: load_model(c.locked_model("closed", 0o000, 0o644)),
                lambda c: ["inspect", c.locked_model("closed", 0o000, 0o644)], nobody=True,
                prepare=lambda c: c.locked_model("closed", 0o000, 0o644)),
    "E08": Case(lambda c: load_model(c.path("m" * 300 + ".onnx")), lambda c: ["inspect", c.path("m" * 300 + ".onnx")]),
    "E09": Case(lambda c: load_model(c.once("plain", lambda: plain_onnx(c.path("plain.onnx")))),
                lambda c: ["inspect", c.once("plain", lambda: plain_onnx(c.path("plain.onnx")))]),
    "E10": Case(lambda c: load_model(c.with_metadata("v99", format="99")),
                lambda c: ["classify", c.with_metadata("v99", format="99"), "x"]),
    "E11": Case(lambda c: load_model(c.with_metadata("v2sup", format="²")),
                lambda c: ["inspect", c.with_metadata("v2sup", format="²")]),
    "E12": Case(lambda c: load_model(c.with_metadata("novocab", vocab=None)),
                lambda c: ["inspect", c.with_metadata("novocab", vocab=None)]),
    "E13": Case(lambda c: load_model(c.with_metadata("badjson", labels='["neg", "pos"')),
                lambda c: ["inspect", c.with_metadata("badjson", labels='["neg", "pos"')]),
    "E14": Case(lambda c: load_model(c.with_metadata("badtype", labels='{"neg": 0, "pos": 1}')),
                lambda c: ["inspect", c.with_metadata("badtype", labels='{"neg": 0, "pos": 1}')]),
    "E15": Case(lambda c: load_model(c.with_metadata("deep", metrics='{"a": ' + "[" * 100 + "]" * 100 + "}")),
                lambda c: ["inspect", c.with_metadata("deep", metrics='{"a": ' + "[" * 100 + "]" * 100 + "}")]),
    "E16": Case(lambda c: load_model(c.with_metadata("huge", metrics='{"a": "' + "x" * MAX_VALUE_BYTES + '"}')),
                lambda c: ["inspect", c.with_metadata("huge", metrics='{"a": "' + "x" * MAX_VALUE_BYTES + '"}')]),
    "E17": Case(lambda c: load_model(c.with_metadata("bigvocab", vocab=json.dumps(["a"] * (MAX_VOCAB + 1)))),
                lambda c: ["inspect", c.with_metadata("bigvocab", vocab=json.dumps(["a"] * (MAX_VOCAB + 1)))]),
    "E18": Case(lambda c: load_model(long_token_model(c)), lambda c: ["inspect", long_token_model(c)]),
    "E19": Case(lambda c: load_model(edited_vocab_model(c)), lambda c: ["inspect", edited_vocab_model(c)]),
    "E20": Case(lambda c: load_model(c.with_metadata("labels3", labels='["neg", "mid", "pos"]')),
                lambda c: ["classify", c.with_metadata("labels3", labels='["neg", "mid", "pos"]'), "x"]),
    "E21": Case(lambda c: load_model(c.graph("float-tokens", TensorProto.FLOAT, [1, "b", 12])),
                lambda c: ["inspect", c.graph("float-tokens", TensorProto.FLOAT, [1, "b", 12])]),
    "E22": Case(lambda c: load_model(c.graph("dynamic", TensorProto.INT64, ["l", "b", "h"])),
                lambda c: ["inspect", c.graph("dynamic", TensorProto.INT64, ["l", "b", "h"])]),
    "E23": Case(lambda c: load_model(c.external("up", "../outside.bin")),
                lambda c: ["inspect", c.external("up", "../outside.bin")]),
    "E24": Case(lambda c: load_model(c.external("abs", str(c.root / "outside.bin"))),
                lambda c: ["inspect", c.external("abs", str(c.root / "outside.bin"))]),
    "E25": Case(lambda c: load_model(c.external("gone", "gone.bin")),
                lambda c: ["inspect", c.external("gone", "gone.bin")]),
    "E70": Case(lambda c: load_model(c.fifo("pipe.onnx")), lambda c: ["inspect", c.fifo("pipe.onnx")]),
    # session options
    "E26": Case(lambda c: load_model(c.clf, providers="tpu"), lambda c: ["inspect", c.clf, "--providers", "tpu"]),
    "E27": Case(lambda c: load_model(c.clf, providers=["TPUExecutionProvider"]),
                lambda c: ["inspect", c.clf, "--providers", "TPUExecutionProvider"]),
    "E28": Case(lambda c: load_model(c.clf, providers=[]), lambda c: ["inspect", c.clf, "--providers", ","]),
    "E29": Case(lambda c: load_model(c.clf, providers=[("CPUExecutionProvider",)])),
    "E30": Case(lambda c: load_model(c.clf, sess_options={"intra_op_num_threads": 1})),
    "E31": Case(lambda c: load_model(c.clf, threads=0), lambda c: ["inspect", c.clf, "--threads", "0"]),
    # texts and calls
    "E32": Case(lambda c: c.model("clf").classify(""), lambda c: ["classify", c.clf, ""]),
    "E33": Case(lambda c: c.model("clf").classify(b"bytes")),
    "E34": Case(lambda c: c.model("clf").generate("x"), lambda c: ["generate", c.clf, "--prompt", "x"]),
    "E35": Case(lambda c: c.model("lm").stream().step(10**6)),
    "E36": Case(None, lambda c: ["stream", c.clf], stdin=b"\xff\xfe not UTF-8\n"),
    "E37": Case(lambda c: c.model("lm").generate("x", top_p=2), lambda c: ["generate", c.lm, "--top-p", "2"]),
    # states and snapshots
    "E38": Case(lambda c: c.model("lm").run(np.array([[4, 5]]), c.model("lm").zero_state(2))),
    "E39": Case(lambda c: c.model("lm").stream(c.snapshot("lm2"))),
    "E40": Case(lambda c: c.model("lm").stream(c.snapshot()[:-9])),
    "E41": Case(lambda c: c.model("lm").stream(_flip(c.snapshot()))),
    "E42": Case(lambda c: c.model("lm").batcher().step([c.model("lm2").stream()], [5])),
    "E73": Case(lambda c: c.model("tagger").stream(c.tag_snapshot())),
    "E74": Case(lambda c: c.model("tagger").tag_stream(c.snapshot("tagger"))),
    "E75": Case(lambda c: c.model("tagger").tag_stream(snapshot_with_header(
        c.tag_snapshot(), tag={"offset": -1, "tokens": [], "tail": "", "tags": []}))),
    "E76": Case(lambda c: c.model("tagger").batcher().step([c.model("tagger").tag_stream()], [5])),
    "E77": Case(lambda c: own_stream_in_a_batch(c.model("tagger"))),
    # checkpoints
    "E43": Case(lambda c: export_onnx(c.path("none.pt"), c.fresh("m.onnx")),
                lambda c: ["export", c.path("none.pt"), "--out", c.fresh("m.onnx")]),
    "E44": Case(lambda c: export_onnx(c.file("cut.pt", c.ckpt.read_bytes()[:3000]), c.fresh("m.onnx")),
                lambda c: ["export", c.file("cut.pt", c.ckpt.read_bytes()[:3000]), "--out", c.fresh("m.onnx")]),
    "E45": Case(lambda c: load_checkpoint(malicious_pickle(c.path("evil.pt"), c.path("pwned"))),
                lambda c: ["export", malicious_pickle(c.path("evil.pt"), c.path("pwned")), "--out", c.fresh("m.onnx")]),
    "E46": Case(lambda c: export_onnx(c.ckpt_with("v99", rnnkit_checkpoint=99), c.fresh("m.onnx")),
                lambda c: ["export", c.ckpt_with("v99", rnnkit_checkpoint=99), "--out", c.fresh("m.onnx")]),
    "E47": Case(lambda c: export_onnx(c.ckpt_with("vocab5", vocab=5), c.fresh("m.onnx")),
                lambda c: ["export", c.ckpt_with("vocab5", vocab=5), "--out", c.fresh("m.onnx")]),
    "E48": Case(lambda c: export_onnx(grown_ckpt(c), c.fresh("m.onnx")),
                lambda c: ["export", grown_ckpt(c), "--out", c.fresh("m.onnx")]),
    "E49": Case(lambda c: export_onnx(nan_ckpt(c), c.fresh("m.onnx")),
                lambda c: ["export", nan_ckpt(c), "--out", c.fresh("m.onnx")]),
    "E71": Case(lambda c: export_onnx(c.fifo("pipe.pt"), c.fresh("m.onnx")),
                lambda c: ["export", c.fifo("pipe.pt"), "--out", c.fresh("m.onnx")]),
    "E72": Case(lambda c: export_onnx(c.locked_ckpt(), c.fresh("m.onnx")),
                lambda c: ["export", c.locked_ckpt(), "--out", c.fresh("m.onnx")], nobody=True,
                prepare=lambda c: c.locked_ckpt()),
    "E50": Case(lambda c: train(hello(c.damaged_run()), resume=True),
                lambda c: ["train", *HELLO, "--out", c.damaged_run(), "--resume"]),
    # training data and options
    "E51": Case(lambda c: train(data_config(c, c.path("none.tsv"))),
                lambda c: ["train", *data_args(c, c.path("none.tsv"))]),
    "E52": Case(lambda c: train(data_config(c, c.file("latin1.tsv", "pos\tgut\nneg\tschön\n".encode("latin-1")))),
                lambda c: ["train", *data_args(c, c.path("latin1.tsv"))]),
    "E53": Case(lambda c: train(data_config(c, c.file("notab.tsv", b"pos\tgood\nno tab here\n"))),
                lambda c: ["train", *data_args(c, c.path("notab.tsv"))]),
    "E54": Case(lambda c: train(data_config(c, c.folder_named_like_data)),
                lambda c: ["train", *data_args(c, c.folder_named_like_data)]),
    "E55": Case(lambda c: train(data_config(c, c.file("blank.tsv", b"\n \n"))),
                lambda c: ["train", *data_args(c, c.path("blank.tsv"))]),
    "E56": Case(lambda c: train(data_config(c, c.file("data.csv", b"pos,good\n"))),
                lambda c: ["train", *data_args(c, c.path("data.csv"))]),
    "E57": Case(lambda c: train(TrainConfig(task="classify", data="builtin:imdb", out=str(c.fresh("run")))),
                lambda c: ["train", "--task", "classify", "--data", "builtin:imdb", "--out", c.fresh("run"),
                           "--quiet"]),
    "E58": Case(lambda c: train(hello(c.fresh("run")), resume=True),
                lambda c: ["train", *HELLO, "--out", c.fresh("run"), "--resume"]),
    "E59": Case(lambda c: train(hello(c.run, epochs=3), resume=True),
                lambda c: ["train", *[a if a != "2" else "3" for a in HELLO], "--out", c.run, "--resume"]),
    "E60": Case(lambda c: train(hello(c.run)), lambda c: ["train", *HELLO, "--out", c.run]),
    # writing outputs
    "E61": Case(lambda c: train(hello(c.file("file.txt", b"x") / "sub" / "run")),
                lambda c: ["train", *HELLO, "--out", c.file("file.txt", b"x") / "sub" / "run"]),
    "E62": Case(lambda c: export_onnx(c.ckpt, c.clf), lambda c: ["export", c.ckpt, "--out", c.clf]),
    "E63": Case(lambda c: export_onnx(c.ckpt, c.root), lambda c: ["export", c.ckpt, "--out", c.root]),
    "E64": Case(lambda c: export_onnx(c.ckpt, c.file("file.txt", b"x") / "m.onnx"),
                lambda c: ["export", c.ckpt, "--out", c.file("file.txt", b"x") / "m.onnx"]),
    "E65": Case(lambda c: train(hello(c.fresh("run"))), lambda c: ["train", *HELLO, "--out", c.fresh("run")],
                patch=lambda mp: mp.setattr(torch, "save", disk_full)),
    "E66": Case(lambda c: export_onnx(c.ckpt, c.fresh("m.onnx")),
                lambda c: ["export", c.ckpt, "--out", c.fresh("m.onnx")],
                patch=lambda mp: fill_disk_on_write(mp, ".onnx")),
    "E67": Case(lambda c: train(hello(c.fresh("run"))), lambda c: ["train", *HELLO, "--out", c.fresh("run")],
                patch=lambda mp: fill_disk_on_write(mp, "metrics.json")),
    "E68": Case(lambda c: export_onnx(c.public_ckpt, c.read_only_folder("ro-export") / "m.onnx"),
                lambda c: ["export", c.public_ckpt, "--out", c.read_only_folder("ro-export") / "m.onnx"], nobody=True,
                prepare=lambda c: (c.public_ckpt, c.read_only_folder("ro-export"))),
    "E69": Case(lambda c: train(hello(c.read_only_folder("ro-train") / "run")),
                lambda c: ["train", *HELLO, "--out", c.read_only_folder("ro-train") / "run"], nobody=True,
                prepare=lambda c: c.read_only_folder("ro-train")),
}


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


@pytest.fixture(scope="module")
def ctx(tmp_path_factory):
    public = Path(tempfile.mkdtemp(prefix="rnnkit-public-"))
    public.chmod(0o755)
    c = Ctx(tmp_path_factory.mktemp("catalogue"), public)
    for argv in (["train", "--help"], ["export", "--help"], ["inspect", "--help"]):  # import every command now,
        with pytest.raises(SystemExit), contextlib.redirect_stdout(io.StringIO()):  # not as nobody later
            main(argv)
    load_model(c.clf)
    yield c
    for path in public.rglob("*"):
        with contextlib.suppress(OSError):
            path.chmod(0o755 if path.is_dir() else 0o644)
    shutil.rmtree(public, ignore_errors=True)


# -- the tests -----------------------------------------------------------------------------------
def test_the_catalogue_lists_every_case_and_no_other():
    rows = catalogue()
    assert len(rows) >= 30
    assert sorted(rows) == sorted(CASES), "docs/ERRORS.md and CASES list different ids"
    for row in rows.values():
        assert row.raises or row.exit_code is not None, f"{row.id} says neither what raises nor what the CLI does"
        assert (row.exit_code is None) == (row.says is None), f"{row.id}: an exit code goes with a message"
        assert (row.raises is None) == (CASES[row.id].api is None), f"{row.id}: the library column vs the case"
        assert (row.exit_code is None) == (CASES[row.id].cli is None), f"{row.id}: the CLI columns vs the case"


@pytest.mark.parametrize("ident", sorted(catalogue()))
def test_catalogue_case(ident, ctx, capsys, monkeypatch):
    """Each row of docs/ERRORS.md (E01…): the library raises that class, the CLI prints that one line."""
    row, case = catalogue()[ident], CASES[ident]
    if case.prepare:
        case.prepare(ctx)
    if case.patch:
        case.patch(monkeypatch)
    privileges = unprivileged if case.nobody else contextlib.nullcontext
    if case.api is not None:
        with privileges(), pytest.raises(Exception) as info:  # the class is the doc's, checked below
            case.api(ctx)
        error = info.value
        assert type(error).__name__ == row.raises, f"{ident}: {type(error).__name__}: {error}"
        assert isinstance(error, (RnnkitError, TypeError)), f"{ident}: a bare {type(error).__name__}"
        assert "\n" not in str(error) and len(str(error)) < 600, f"{ident}: {error}"
        if isinstance(error, RnnkitError):
            assert "Traceback" not in str(error)
    if case.cli is not None:
        argv = [str(a) for a in case.cli(ctx)]
        capsys.readouterr()
        if case.stdin is not None:
            monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(case.stdin), encoding="utf-8"))
        with privileges(), pytest.raises(SystemExit) as info:
            main(argv)
        captured = capsys.readouterr()
        assert info.value.code == row.exit_code, f"{ident}: exit {info.value.code}: {captured.err}"
        assert "Traceback" not in captured.err + captured.out
        errors = [line for line in captured.err.splitlines() if line.startswith("Error:")]
        assert len(errors) == 1, captured.err
        if row.exit_code == 1:  # a usage error (2) adds click's usage lines; anything else is the error alone
            assert captured.err.strip() == errors[0]
        assert row.says in errors[0], f"{ident}: {errors[0]}"
        assert "internal error" not in errors[0]
