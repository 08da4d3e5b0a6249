"""``rnnkit.unicode``: the Unicode version of the tables that normalised a model's text, written by every
export, optional for a reader, and a warning (once per version) when this Python's tables differ."""

from __future__ import annotations

import unicodedata
import warnings

import pytest

pytest.importorskip("torch")

import onnx
from click.testing import CliRunner
from factory import tiny_onnx
from onnx_edits import rewrite_metadata

import rnnkit.runtime.unicode as unicode_module
from rnnkit.runtime import MetadataError, ModelSpec, RnnkitWarning, load_model
from rnnkit.runtime.cli import cli
from rnnkit.runtime.contract import KEYS, OPTIONAL

OURS = unicodedata.unidata_version


@pytest.fixture(scope="module")
def lm(tmp_path_factory):
    return tiny_onnx(tmp_path_factory.mktemp("lm"), task="lm", cell="gru")


@pytest.fixture(autouse=True)
def fresh_warnings(monkeypatch):
    monkeypatch.setattr(unicode_module, "_warned_versions", set())


def props_of(path):
    return {p.key: p.value for p in onnx.load(str(path)).metadata_props}


def test_export_records_this_pythons_unicode_version(lm):
    assert KEYS.UNICODE == "rnnkit.unicode" and KEYS.UNICODE in OPTIONAL
    assert props_of(lm)[KEYS.UNICODE] == OURS
    with warnings.catch_warnings():
        warnings.simplefilter("error", RnnkitWarning)  # the same tables: nothing to say
        assert load_model(lm).metadata.unicode == OURS


def test_a_file_without_it_loads_as_unknown(lm, tmp_path):
    old = rewrite_metadata(lm, tmp_path / "old.onnx", unicode=None)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RnnkitWarning)
        model = load_model(old)
    assert model.metadata.unicode is None and KEYS.UNICODE not in model.metadata.to_metadata()
    assert model.generate("我", max_tokens=3, seed=0) is not None


def test_another_version_warns_once_per_version(lm, tmp_path):
    older = rewrite_metadata(lm, tmp_path / "older.onnx", unicode="13.0.0")
    newer = rewrite_metadata(lm, tmp_path / "newer.onnx", unicode="15.1.0")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for path in (older, older, newer, older, newer):
            load_model(path)
    said = [str(w.message) for w in caught if issubclass(w.category, RnnkitWarning)]
    assert len(said) == 2
    assert "Unicode 13.0.0" in said[0] and f"Unicode {OURS}" in said[0] and "Unicode 15.1.0" in said[1]
    assert all("\n" not in s and "for identical results" in s for s in said)
    assert load_model(older).metadata.unicode == "13.0.0"


@pytest.mark.parametrize("bad", ["14.0", "v14.0.0", "14.0.0.1", "1400.0.0", "14.0.0\n", "", "١٤.0.0"])
def test_a_malformed_version_is_refused(lm, tmp_path, bad):
    path = rewrite_metadata(lm, tmp_path / "bad.onnx", unicode=bad)
    with pytest.raises(MetadataError, match=r"rnnkit\.unicode") as info:
        load_model(path)
    assert info.value.key == KEYS.UNICODE
    spec = load_model(lm).metadata
    with pytest.raises(MetadataError):
        ModelSpec.from_metadata({**spec.to_metadata(), KEYS.UNICODE: bad})


def test_inspect_shows_it(lm, tmp_path):
    result = CliRunner().invoke(cli, ["inspect", str(lm)])
    assert result.exit_code == 0 and f"Unicode {OURS}" in result.stdout
    as_json = CliRunner().invoke(cli, ["inspect", "--json", str(lm)])
    assert f'"unicode": "{OURS}"' in as_json.stdout
    old = rewrite_metadata(lm, tmp_path / "old.onnx", unicode=None)
    assert "Unicode" not in CliRunner().invoke(cli, ["inspect", str(old)]).stdout
