"""Data that trains must export; data inputs that are not files, or too large, are refused.

What export would refuse (one class, labels a model file cannot list, a vocabulary beyond the
contract's caps) is refused when the data is read or before the first step, never after an
epoch; a pipe or a device given as ``--data`` is refused without blocking or reading it.
"""

from __future__ import annotations

import json
import os
import socket

import pytest

torch = pytest.importorskip("torch")

from factory import tiny_checkpoint  # noqa: E402

from rnnkit.export import export_onnx  # noqa: E402
from rnnkit.runtime import DataError, RnnkitError, load_model  # noqa: E402
from rnnkit.runtime import contract as contract_module  # noqa: E402
from rnnkit.runtime.contract import KEYS, SCHEMAS  # noqa: E402
from rnnkit.runtime.errors import ConfigError  # noqa: E402
from rnnkit.train import trainer as trainer_module  # noqa: E402
from rnnkit.train.checkpoint import BEST_NAME  # noqa: E402
from rnnkit.train.config import TrainConfig  # noqa: E402
from rnnkit.train.data import MAX_DATA_BYTES, MAX_LINE_CHARS, check_exportable, load_data  # noqa: E402
from rnnkit.train.trainer import train  # noqa: E402

UNPRINTABLE = ["\x00", "\x07", "\x08", "\x1b", "\x7f", "\x85", "\x9b", "\u2028", "\u2029"]


def write(tmp_path, name: str, text: str):
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8", "surrogatepass"))
    return str(path)


def config(tmp_path, data, task="classify", **changes) -> TrainConfig:
    return TrainConfig(**{"task": task, "data": str(data), "out": str(tmp_path / "run"), "epochs": 1, "hidden": 8,
                          "embed": 4, "device": "cpu", "threads": 1, **changes})


def no_model(monkeypatch) -> None:
    """Building the model fails the test: the refusal must come before any weight exists."""
    def fail(*args, **kwargs):
        raise AssertionError("the model was built")

    monkeypatch.setattr(trainer_module, "RNNModel", fail)


def assert_one_line(error: BaseException) -> None:
    assert isinstance(error, RnnkitError)
    assert "\n" not in str(error) and "\x1b" not in str(error) and len(str(error)) < 600, repr(str(error))


# -- labels a model file could not hold ------------------------------------------------------------
@pytest.mark.parametrize("char", UNPRINTABLE, ids=[f"U+{ord(c):04X}" for c in UNPRINTABLE])
def test_a_label_with_a_control_character_is_refused_at_its_line(tmp_path, char):
    tsv = write(tmp_path, "d.tsv", f"pos\tgood\n\nne{char}g\tbad\n")
    jsonl = write(tmp_path, "d.jsonl", '{"text": "good", "label": "pos"}\n'
                                       + json.dumps({"text": "bad", "label": "ne" + char + "g"}) + "\n")
    for path, line in ((tsv, 3), (jsonl, 2)):
        with pytest.raises(DataError) as info:
            load_data(path, "classify")
        assert (info.value.path, info.value.line) == (str(path), line)
        assert f"holds U+{ord(char):04X}" in str(info.value)
        assert_one_line(info.value)


@pytest.mark.parametrize("char", ["\x00", "\x07", "\x1b", "\x7f", "\x9b"])  # U+2028 splits the line: whitespace
def test_a_tag_with_a_control_character_is_refused_at_its_line(tmp_path, char):
    path = write(tmp_path, "d.tag", f"我/r 爱/v\n北京/n 天安门/n{char}\n")
    with pytest.raises(DataError, match=f"d.tag:2: item 2: tag 'n.*' holds U\\+{ord(char):04X}") as info:
        load_data(path, "tag")
    assert_one_line(info.value)


def test_bad_labels_are_bad_lines_that_skip_bad_skips(tmp_path):
    path = write(tmp_path, "d.tsv", "pos\tgood\nneg\tbad\n\x1b[2Jneg\tworse\n" + "x" * 513 + "\tlong\nneg\tugly\n")
    ds = load_data(path, "classify", skip_bad=True)
    assert ds.skipped == 2 and ds.labels == ["neg", "pos"]
    assert train(config(tmp_path, path, skip_bad=True)).skipped == 2


def test_labels_a_model_file_can_hold_train_and_export(tmp_path):
    """The longest label, emoji joined by ZWJ, inner spaces, CJK: all go through export and load."""
    labels = ["l" * 512, "👩\u200d💻 coder", "非常 好", "\u200b"]
    lines = "".join(f"{label}\t{text}\n" for label, text in zip(labels * 3, ["好", "不好", "一般", "很好"] * 3))
    result = train(config(tmp_path, write(tmp_path, "d.tsv", lines)))
    model = load_model(export_onnx(result.out, tmp_path / "m.onnx").path)
    assert sorted(model.labels) == sorted(labels)


@pytest.mark.parametrize("label", ["x" * 513, "\ud800", "a\udfffb", "a\x1b[31m", "\x07", "a\u2028b"])
def test_what_export_refuses_the_data_refuses_first(tmp_path, label):
    """For labels export refuses, the data is refused too; control characters the data refuses on its own."""
    try:
        export_onnx(tiny_checkpoint(tmp_path / "ckpt", labels=(label, "b")), tmp_path / "m.onnx")
        export_refused = False
    except (RnnkitError, UnicodeError):
        export_refused = True
    path = write(tmp_path, "d.jsonl", "".join(json.dumps({"text": t, "label": lab}) + "\n"
                                              for t, lab in (("好", label), ("坏", "b"))))
    with pytest.raises(DataError, match=r"d\.jsonl:1: label "):
        load_data(path, "classify")
    assert export_refused or not label.isprintable()


def test_one_class_is_refused_before_training_also_after_skipping_or_a_limit(tmp_path, monkeypatch):
    no_model(monkeypatch)
    one = write(tmp_path, "one.tsv", "pos\ta\npos\tb\n")
    with pytest.raises(DataError, match="every example has the label 'pos': a classify model needs at least 2"):
        train(config(tmp_path, one))
    skipped = write(tmp_path, "skipped.tsv", "pos\ta\nneg\x07\tb\npos\tc\n")
    with pytest.raises(DataError, match="every example has the label 'pos'"):
        train(config(tmp_path, skipped, skip_bad=True))
    limited = write(tmp_path, "limited.tsv", "pos\ta\nneg\tb\n")
    with pytest.raises(DataError, match=r"every example \(after --limit 1\) has the label"):
        train(config(tmp_path, limited, limit=1))
    assert not (tmp_path / "run" / BEST_NAME).exists()


def test_one_tag_is_refused_but_a_segmenter_always_has_its_four(tmp_path, monkeypatch):
    with pytest.raises(DataError, match="a tag model needs at least 2 tags"):
        check_exportable(load_data(write(tmp_path, "one.tag", "我/r 爱/r\n"), "tag"))
    ds = load_data(write(tmp_path, "s.tag", "我/s 爱/s\n"), "tag")
    check_exportable(ds)
    assert ds.labels == ["B", "E", "M", "S"]


def test_too_many_labels_or_too_many_label_bytes_are_refused(tmp_path, monkeypatch):
    many = write(tmp_path, "many.tsv", "".join(f"c{i}\tt\n" for i in range(100_001)))
    with pytest.raises(DataError, match="100,001 distinct labels, more than the 100,000"):
        check_exportable(load_data(many, "classify"))
    monkeypatch.setattr("rnnkit.train.data.MAX_VALUE_BYTES", 30)
    few = write(tmp_path, "few.tsv", "".join(f"{'长' * 5}{i}\tt\n" for i in range(3)))
    with pytest.raises(DataError, match="the labels take 60 bytes as JSON, more than the 30"):
        check_exportable(load_data(few, "classify"))


def test_a_lone_surrogate_in_a_text_is_refused_before_it_becomes_a_token(tmp_path, monkeypatch):
    no_model(monkeypatch)
    path = write(tmp_path, "d.jsonl", '{"text": "ok", "label": "a"}\n{"text": "x\\ud83dy", "label": "b"}\n')
    with pytest.raises(DataError, match=r"the text of example 2 holds a lone surrogate \(U\+D83D\) at character 2"):
        train(config(tmp_path, path))
    paired = write(tmp_path, "p.jsonl", '{"text": "ok", "label": "a"}\n{"text": "\\ud83d\\ude00", "label": "b"}\n')
    check_exportable(load_data(paired, "classify"))  # a proper pair is one character: 😀


def test_a_vocabulary_beyond_the_contract_is_refused_with_the_contracts_own_check(tmp_path, monkeypatch):
    """train validates the metadata the model would carry by ModelSpec.to_metadata, as export does."""
    text = write(tmp_path, "t.txt", "abcdefghij\n")
    with monkeypatch.context() as patch:
        patch.setitem(SCHEMAS[KEYS.VOCAB], "maxItems", 10)
        with monkeypatch.context() as building:
            no_model(building)
            with pytest.raises(DataError, match=r"t\.txt: a model trained on this data could not be exported: "
                                                r"metadata 'rnnkit\.vocab' is invalid: \$: more than 10 items; cap "
                                                r"the vocabulary"):
                train(config(tmp_path, text, task="lm"))
        train(config(tmp_path, text, task="lm", max_vocab=10, out=str(tmp_path / "capped")))  # the hint works
    no_model(monkeypatch)
    monkeypatch.setattr(contract_module, "MAX_VALUE_BYTES", 300)  # the tokenizer's JSON fits, 100 CJK tokens not
    wide = write(tmp_path, "w.txt", "".join(chr(0x4E00 + i) for i in range(100)) + "\n")
    with pytest.raises(DataError, match=r"metadata 'rnnkit\.vocab' is larger than 300 bytes"):
        train(config(tmp_path, wide, task="lm", out=str(tmp_path / "big")))


def test_dims_the_contract_refuses_are_config_errors(tmp_path, monkeypatch):
    no_model(monkeypatch)
    monkeypatch.setattr(contract_module, "MAX_DIM", 7)
    with pytest.raises(ConfigError, match=r"a model of these options could not be exported: metadata 'rnnkit\.hidden'"):
        train(TrainConfig(task="tag", data="builtin:hello", out=str(tmp_path / "run"), hidden=8, embed=4,
                          device="cpu"))


# -- data inputs that are not regular files, or too large -----------------------------------------
def test_a_pipe_without_a_writer_is_refused_without_blocking(tmp_path, fresh_python):
    pipe = tmp_path / "pipe.tsv"
    os.mkfifo(pipe)
    result = fresh_python(f"""
        from rnnkit.runtime import DataError
        from rnnkit.train.data import load_data
        try:
            load_data({str(pipe)!r}, "classify")
        except DataError as e:
            print(e)
        """, timeout=60)  # a hang would fail here, not stall the suite
    assert result.stdout.strip() == f"{pipe}: is not a regular file (a pipe, socket or device); save the data to a " \
                                    "file and give its path", result.stderr


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom", "/dev/null"])
def test_a_device_is_refused_also_behind_a_link_with_a_data_name(tmp_path, device):
    if not os.path.exists(device):
        pytest.skip(f"no {device} here")
    link = tmp_path / "data.tsv"
    link.symlink_to(device)
    for source, task in ((device, "lm"), (link, "classify")):
        with pytest.raises(DataError, match="is not a regular file") as info:
            load_data(str(source), task)
        assert_one_line(info.value)


def test_a_socket_is_refused(tmp_path):
    path = str(tmp_path / "s.txt")
    server = socket.socket(socket.AF_UNIX)
    try:
        server.bind(path)
        with pytest.raises(DataError, match="is not a regular file"):
            load_data(path, "lm")
    finally:
        server.close()


def test_a_file_over_the_size_cap_is_refused_before_it_is_read(tmp_path, monkeypatch):
    path = tmp_path / "huge.txt"
    with open(path, "wb") as f:  # sparse: no disk is spent on it
        f.truncate(MAX_DATA_BYTES + 1)

    def no_read(*args, **kwargs):
        raise AssertionError("the file was read")

    monkeypatch.setattr(os, "read", no_read)
    with pytest.raises(DataError, match=f"the file is {MAX_DATA_BYTES + 1:,} bytes, more than the "
                                        f"{MAX_DATA_BYTES:,} rnnkit reads") as info:
        load_data(str(path), "lm")
    assert_one_line(info.value)


def test_a_line_over_the_length_cap_is_a_bad_line(tmp_path):
    long = "字" * (MAX_LINE_CHARS + 1)
    path = write(tmp_path, "d.txt", f"short\n{long}\nend\n")
    with pytest.raises(DataError, match=r"d\.txt:2: the line is 1,048,577 characters long.*--whole-file"):
        load_data(path, "lm")
    assert load_data(path, "lm", skip_bad=True).examples == ["short", "end"]
    assert len(load_data(path, "lm", whole_file=True).examples[0]) == len("short\n" + long + "\nend\n")
    tagged = write(tmp_path, "d.tag", "我/r\n" + "好/a " * (MAX_LINE_CHARS // 4 + 1) + "\n")
    with pytest.raises(DataError, match=r"d\.tag:2: the line is"):
        load_data(tagged, "tag")
    exact = write(tmp_path, "e.tsv", "a\t" + "x" * (MAX_LINE_CHARS - 2) + "\nb\ty\n")
    assert len(load_data(exact, "classify").examples) == 2  # a line of exactly the cap is fine


def test_the_command_says_one_line_for_a_device(tmp_path, capsys):
    from rnnkit.runtime.cli import main

    with pytest.raises(SystemExit) as info:
        main(["train", "--task", "lm", "--data", "/dev/urandom", "--out", str(tmp_path / "run"), "--quiet"])
    err = capsys.readouterr().err
    assert info.value.code == 1
    assert err.strip() == "Error: /dev/urandom: is not a regular file (a pipe, socket or device); save the data " \
                          "to a file and give its path"
