"""The bad-input catalogue: every row of docs/ERRORS.md is run here, so the doc cannot drift.

Each row of the catalogue has an id (``E07``), the bad input, the exception the library raises
and what the CLI prints (exit code and a piece of its one ``Error:`` line). ``CASES`` below and
the ``cases_*.py`` modules beside it hold, for every id, the call that feeds that bad input to
the library and the command line that feeds it to ``rnnkit``; ``test_catalogue_case[E07]`` runs
both and checks the row.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from catalogue import (  # noqa: E402
    HELLO,
    Case,
    Ctx,
    catalogue,
    data_args,
    data_config,
    disk_full,
    edited_vocab_model,
    fill_disk_on_write,
    grown_ckpt,
    hello,
    long_token_model,
    malicious_pickle,
    nan_ckpt,
    own_stream_in_a_batch,
    plain_onnx,
    snapshot_with_header,
)
from conftest import unprivileged  # noqa: E402
from onnx import TensorProto  # noqa: E402

from rnnkit.export import export_onnx  # noqa: E402
from rnnkit.runtime import RnnkitError, load_model  # noqa: E402
from rnnkit.runtime.cli import main  # noqa: E402
from rnnkit.runtime.contract import MAX_VALUE_BYTES, MAX_VOCAB  # noqa: E402
from rnnkit.train.checkpoint import load_checkpoint  # noqa: E402
from rnnkit.train.config import TrainConfig  # noqa: E402
from rnnkit.train.trainer import train  # noqa: E402


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




def _all_cases() -> dict[str, Case]:
    """``CASES`` above and those of every ``cases_*.py`` module: one id, one case."""
    merged = dict(CASES)
    for module in EXTRA_CASES:
        for ident, case in importlib.import_module(module).CASES.items():
            assert ident not in merged, f"{ident} has two cases"
            merged[ident] = case
    return merged


EXTRA_CASES = ("cases_graph", "cases_files", "cases_numbers", "cases_streams", "cases_evaluate",
               "cases_embeddings", "cases_training", "cases_tokenizers", "cases_format3", "cases_factory",
               "cases_module", "cases_verify", "cases_js", "cases_distributed")
ALL_CASES = _all_cases()


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
    assert sorted(rows) == sorted(ALL_CASES), "docs/ERRORS.md and CASES list different ids"
    for row in rows.values():
        assert row.raises or row.exit_code is not None, f"{row.id} says neither what raises nor what the CLI does"
        assert (row.exit_code is None) == (row.says is None), f"{row.id}: an exit code goes with a message"
        assert (row.raises is None) == (ALL_CASES[row.id].api is None), f"{row.id}: the library column vs the case"
        assert (row.exit_code is None) == (ALL_CASES[row.id].cli is None), f"{row.id}: the CLI columns vs the case"


@pytest.mark.parametrize("ident", sorted(catalogue()))
def test_catalogue_case(ident, ctx, capsys, monkeypatch):
    """Each row of docs/ERRORS.md (E01…): the library raises that class, the CLI prints that one line."""
    row, case = catalogue()[ident], ALL_CASES[ident]
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
