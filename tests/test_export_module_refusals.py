"""export_module: every module shape rnnkit cannot map, and every bad argument: one line, nothing written."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

import seed_models as seeds  # noqa: E402

from rnnkit.export import export_module  # noqa: E402
from rnnkit.runtime.errors import ConfigError, ModuleError, ParityError  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:Implicit dimension choice:UserWarning")


def _digits(n):
    return [str(i) for i in range(n)]


def _clf(make, **options):
    """``make``'s module as a two-label classifier over the tokens 0–9 (``options`` replace those)."""
    return make, {"task": "classify", "vocab": _digits(10), "labels": ["no", "yes"], **options}


def _gru():
    return seeds.Classifier("GRU", 10, 8, 2)


REFUSED = {
    # name: (the module's factory, export_module options, the error's class, a piece of its message)
    "bidirectional": (*_clf(seeds.Bidirectional), ModuleError, "is bidirectional"),
    "two RNNs": (*_clf(seeds.TwoRNNs), ModuleError, r"found 2 recurrent layers \('encoder' \(GRU\), 'decoder'"),
    "attention": (*_clf(seeds.Attention), ModuleError, "found MultiheadAttention 'attn'"),
    "hand-written cat(x, h)": (lambda: seeds.RNN(10, 8, 8), {"task": "tag", "vocab": _digits(10), "labels": _digits(8)},
                               ModuleError, r"'i2h' \(Linear 16→8\) reads cat\(x, h\)"),
    "no RNN": (*_clf(seeds.NoRNN), ModuleError, r"found no nn\.RNN, nn\.GRU or nn\.LSTM in NoRNN"),
    "Linear, ReLU, Linear": (*_clf(seeds.MLPHead), ModuleError, "found 2 nn.Linear layers"),
    "LayerNorm": (*_clf(seeds.Normed), ModuleError, r"found 'norm' \(LayerNorm\)"),
    "learned initial state": (*_clf(seeds.LearnedStart), ModuleError, "parameter 'h0' belongs to no layer"),
    "proj_size": (*_clf(seeds.Projected), ModuleError, "proj_size=4"),
    "embedding ≠ rnn input": (*_clf(seeds.WideEmbedding), ModuleError, "gives vectors of 6 but 'rnn' reads 8"),
    "head ≠ hidden": (*_clf(seeds.WideHead), ModuleError, "'fc' reads 12 values but 'rnn' gives 8"),
    "F.relu in forward": (*_clf(seeds.ReluBetween), ModuleError, "does not give what its parts compute"),
    "forward returns a dict": (*_clf(seeds.ReturnsDict), ModuleError, "returned dict, not a tensor"),
    "3 labels for 2 outputs": (*_clf(_gru, labels=["a", "b", "c"]), ModuleError,
                               "gives 2 outputs a step but 3 labels were given"),
    "lm output without a token": (lambda: seeds.CharLM(10, 4, 8), {"task": "lm", "vocab": _digits(9)},
                                  ModuleError, "names no token for output 9"),
    "a token twice": (*_clf(_gru, vocab=["a", "b", "a"]), ModuleError, r"lists 'a' twice \(ids 0 and 2\)"),
    "ids past the embedding": (*_clf(_gru, vocab={"a": 0, "b": 12}), ModuleError,
                               r"has id 12, but the module reads ids 0\.\.9"),
    "unknown tokenizer": (*_clf(_gru, tokenizer="bpe"), ConfigError, "unknown tokenizer 'bpe'"),
    "unknown task": (*_clf(_gru, task="translate"), ConfigError, "unknown task 'translate'"),
    "not a module": (*_clf(lambda: _gru().state_dict()), ModuleError, "expected a torch.nn.Module, got OrderedDict"),
    "special not in vocab": (*_clf(_gru, specials={"unk": "[UNK]"}), ModuleError,
                             r"the special unk is '\[UNK\]', which is not in the vocabulary"),
    "labels for an lm": (lambda: seeds.CharLM(10, 4, 8), {"task": "lm", "vocab": _digits(10), "labels": ["a", "b"]},
                         ConfigError, "an lm predicts tokens and takes no labels"),
    **{f"{cell} loop": (lambda cell=cell: seeds.CellLoop(cell, 10, 4),
                        {"task": "tag", "vocab": _digits(10), "labels": list("abcd")},
                        ModuleError, rf"'cell' \({cell}\).*with its own Python loop.*rnn_from_cell")
       for cell in ("RNNCell", "GRUCell", "LSTMCell")},
}


@pytest.mark.parametrize("name", REFUSED)
def test_a_shape_rnnkit_cannot_map_is_refused_and_nothing_is_written(name, tmp_path):
    make, options, error, message = REFUSED[name]
    with pytest.raises(error, match=message) as info:
        export_module(make(), tmp_path / "out" / "m.onnx", **options)
    assert type(info.value) is error
    assert "\n" not in str(info.value) and len(str(info.value)) < 600
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []


class CarriesState(torch.nn.Module):
    """Keeps its hidden state in self.hidden from one call to the next, as some tutorials' generators do."""

    def __init__(self):
        super().__init__()
        self.embedding = torch.nn.Embedding(10, 4)
        self.rnn = torch.nn.GRU(4, 8, batch_first=True)
        self.fc = torch.nn.Linear(8, 2)
        self.hidden = None

    def forward(self, x):
        carried = self.hidden if self.hidden is not None and self.hidden.shape[1] == x.shape[0] else None
        out, self.hidden = self.rnn(self.embedding(x), carried)
        return self.fc(out[:, -1])


class KeepsACopy(CarriesState):
    """Keeps what it computed (for a plot, say) but never reads it back: fine."""

    def forward(self, x):
        out, self.hidden = self.rnn(self.embedding(x))
        self.last = out
        return self.fc(out[:, -1])


class RunsOnce(CarriesState):
    """Answers the first call only: found, then refusing every shape the gate compares at."""

    def forward(self, x):
        self.calls = getattr(self, "calls", 0) + 1
        if self.calls > 1:
            raise RuntimeError("once")
        out, _ = self.rnn(self.embedding(x))
        return self.fc(out[:, -1])


def test_a_forward_that_carries_state_in_an_attribute_is_refused_and_left_as_it_was(tmp_path):
    module = CarriesState()
    with pytest.raises(ModuleError, match=r"keeps state between calls in self\.hidden"):
        export_module(module, tmp_path / "m.onnx", task="classify", vocab=_digits(10), labels=["no", "yes"])
    assert module.hidden is None and not (tmp_path / "m.onnx").exists()


def test_a_forward_that_keeps_a_copy_exports_and_is_left_as_it_was(tmp_path):
    module = KeepsACopy()
    report = export_module(module, tmp_path / "m.onnx", task="classify", vocab=_digits(10), labels=["no", "yes"])
    assert any(c["case"].startswith("module forward") for c in report.parity.cases)
    assert module.hidden is None and not hasattr(module, "last")


def test_a_forward_compared_at_no_shape_is_a_parity_failure(tmp_path):
    with pytest.raises(ParityError) as info:
        export_module(RunsOnce(), tmp_path / "m.onnx", task="classify", vocab=_digits(10), labels=["no", "yes"])
    assert [m["case"] for m in info.value.mismatches] == ["module forward"]
    assert not (tmp_path / "m.onnx").exists()
