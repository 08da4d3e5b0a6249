"""export_module: a user's own torch module → one rnnkit file that answers as the module does.

Each seed-style class (tests/seed_models.py) gets random weights, is exported, and is loaded by
the torch-free runtime; its answers on real text, encoded with the user's own vocabulary, are
then compared with the module called in torch by hand: classify scores, lm stream logits, tags.
After them, the file's metadata and the module left as it was (what is refused:
test_export_module_refusals.py).
"""

from __future__ import annotations

import json
import unicodedata

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")

import seed_models as seeds  # noqa: E402
from torch import nn  # noqa: E402

from rnnkit.export import export_module, rnn_from_cell  # noqa: E402
from rnnkit.export.module import NEVER  # noqa: E402
from rnnkit.runtime import load_model  # noqa: E402
from rnnkit.runtime.errors import InputError, ModuleError, ParityError, WriteError  # noqa: E402

# the seeds' nn.LogSoftmax() without dim, called by the tests themselves
pytestmark = pytest.mark.filterwarnings("ignore:Implicit dimension choice:UserWarning")

ATOL = 1e-5
TEXT = "我爱北京天安门，天安门上太阳升。hello world"
CHARS = sorted(set(TEXT))  # the user's vocabulary: index = id
STOI = {ch: i for i, ch in enumerate(CHARS)}
TEXTS = ["我爱北京", "天安门上太阳升。", "hello", "world 我"]
WORD_VOCAB = sorted({"the", "cat", "sat", "on", "mat", "a", "dog", "log", "<eos>"})  # its corpus ends lines with <eos>
BMES = ["B", "M", "E", "S"]


def ids(text: str, stoi=STOI) -> torch.Tensor:
    """``text`` as the user's code encodes it: (1, T) ids."""
    return torch.tensor([[stoi[ch] for ch in text]])


def export(module, tmp_path, name="m.onnx", **options):
    """export_module's report and the file loaded by the runtime."""
    report = export_module(module, tmp_path / name, **options)
    return report, load_model(report.path)


def metadata(path) -> dict[str, str]:
    return {p.key: p.value for p in onnx.load(str(path)).metadata_props}


def log_softmax(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float64) - x.max(-1, keepdims=True)
    return x - np.log(np.exp(x).sum(-1, keepdims=True))


# -- classify: the runtime's labels and scores are torch's softmax -----------------------------------

def _my_rnn():
    return seeds.my_RNN(len(CHARS), 8, 3, num_layers=2)


def _softmax_gru():
    module = seeds.Classifier("GRU", len(CHARS), 8, 3)
    module.softmax = nn.Softmax(dim=1)  # probabilities out, not log-probabilities
    return module


CLASSIFIERS = {
    # name: (module factory, the module called by hand on (1, T) ids → (1, 3) scores before softmax)
    "seed004 my_RNN": (_my_rnn, lambda m, x: m(x, torch.zeros(2, 1, 8))[0]),
    "GRU": (lambda: seeds.Classifier("GRU", len(CHARS), 8, 3), lambda m, x: m(x)),
    "GRU softmax": (_softmax_gru, lambda m, x: m(x).log()),
    "LSTM x2": (lambda: seeds.Classifier("LSTM", len(CHARS), 8, 3, num_layers=2), lambda m, x: m(x)),
    "LSTM float64": (lambda: seeds.Classifier("LSTM", len(CHARS), 8, 3).double(), lambda m, x: m(x)),
    "RNN relu": (lambda: seeds.SeqFirst("RNN", len(CHARS), 6, 8, 3, nonlinearity="relu"),
                 lambda m, x: m(x.t(), torch.zeros(2, 1, 8))[0][-1]),
}


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_a_classifier_answers_as_torch_does(name, tmp_path):
    make, call = CLASSIFIERS[name]
    torch.manual_seed(0)
    module = make()
    _, model = export(module, tmp_path, task="classify", vocab=CHARS, labels=["neg", "mid", "pos"])
    got = model.classify(TEXTS)
    with torch.no_grad():
        want = [torch.softmax(call(module, ids(t)), -1)[0].double().numpy() for t in TEXTS]
    for text, pred, probs in zip(TEXTS, got, want):
        np.testing.assert_allclose([pred.scores[k] for k in ("neg", "mid", "pos")], probs, atol=ATOL, err_msg=text)
        assert pred.label == ["neg", "mid", "pos"][int(np.argmax(probs))]


def test_a_dict_vocabulary_with_gaps_reads_the_modules_own_ids(tmp_path):
    stoi = {ch: 3 * i + 2 for i, ch in enumerate(CHARS)}  # ids 2, 5, 8, …: rows between them unused
    torch.manual_seed(1)
    module = seeds.Classifier("GRU", 3 * len(CHARS) + 2, 8, 2)
    _, model = export(module, tmp_path, task="classify", vocab=stoi, labels=["no", "yes"])
    with torch.no_grad():
        want = [torch.softmax(module(ids(t, stoi)), -1)[0, 1].item() for t in TEXTS]
    np.testing.assert_allclose([p.scores["yes"] for p in model.classify(TEXTS)], want, atol=ATOL)


def test_a_jieba_word_classifier_on_seed_002s_vocabulary(tmp_path):
    text = "北京冬奥的进度条已经过半，不少外国运动员在完成自己的比赛后踏上归途。"
    words, word_to_index = seeds.seed002_vocab(text)
    torch.manual_seed(16)
    module = seeds.Classifier("RNN", len(word_to_index), 4, 2)
    _, model = export(module, tmp_path, task="classify", vocab=word_to_index, labels=["no", "yes"], tokenizer="jieba")
    assert model.tokenizer.tokenize(text) == words
    with torch.no_grad():
        want = torch.softmax(module(torch.tensor([[word_to_index[w] for w in words]])), -1)[0].numpy()
    got = model.classify(text)
    np.testing.assert_allclose([got.scores["no"], got.scores["yes"]], want, atol=ATOL)


def test_unknown_characters_read_as_the_users_unk_token(tmp_path):
    vocab = ["[PAD]", "[UNK]", *CHARS]
    stoi = {t: i for i, t in enumerate(vocab)}
    torch.manual_seed(2)
    module = seeds.Classifier("GRU", len(vocab), 8, 2)
    report, model = export(module, tmp_path, task="classify", vocab=vocab, labels=["no", "yes"],
                           specials={"unk": "[UNK]", "pad": "[PAD]"})
    text = "我爱上海"  # 上 is known, 海 is not
    with torch.no_grad():
        want = torch.softmax(module(torch.tensor([[stoi.get(ch, 1) for ch in text]])), -1)[0].numpy()
    got = model.classify(text)
    np.testing.assert_allclose([got.scores["no"], got.scores["yes"]], want, atol=ATOL)
    assert report.module["specials"] == {"pad": 0, "unk": 1}


def test_unknown_characters_without_an_unk_token_read_as_a_zero_vector(tmp_path):
    torch.manual_seed(3)
    module = seeds.Classifier("GRU", len(CHARS), 8, 2)
    _, model = export(module, tmp_path, task="classify", vocab=CHARS, labels=["no", "yes"])
    text = "我爱上海"  # 海 has no id in the user's vocabulary
    known = torch.tensor([[STOI.get(ch, 0) for ch in text]])
    with torch.no_grad():
        x = module.embedding(known)  # (1, T, E)
        x[0, [i for i, ch in enumerate(text) if ch not in STOI]] = 0
        out, _ = module.rnn(x)
        want = torch.softmax(module.fc(out[:, -1]), -1)[0].numpy()
    got = model.classify(text)
    np.testing.assert_allclose([got.scores["no"], got.scores["yes"]], want, atol=ATOL)


# -- lm: stream logits are the module's log-probabilities ---------------------------------------------

def columns(model, tokens) -> list[int]:
    """rnnkit's logit column of each of the user's tokens (``vocab.id`` reads a special's name as <unk>)."""
    names = model.vocab.tokens
    return [names.index(t) for t in tokens]


def stream_logits(model, pieces) -> np.ndarray:
    """The logits a stream gives after each piece fed, (T, n_out)."""
    stream = model.stream()
    return np.stack([stream.feed(piece) for piece in pieces])


@pytest.mark.parametrize("framing", [("<pad>", "<bos>", "<eos>"), ("<s>", "</s>")])
def test_an_lm_with_bos_and_eos_streams_as_torch_does(framing, tmp_path):
    vocab = [*framing, *CHARS]
    stoi = {t: i for i, t in enumerate(vocab)}
    torch.manual_seed(4)
    module = seeds.CharLM(len(vocab), 8, 16, "LSTM")
    specials = {"bos": "<s>", "eos": "</s>"} if "<s>" in framing else None
    report, model = export(module, tmp_path, task="lm", vocab=vocab, specials=specials)
    bos = stoi["<s>" if specials else "<bos>"]
    text = "天安门上太阳升。"
    with torch.no_grad():
        want = torch.log_softmax(module(torch.tensor([[bos] + [stoi[ch] for ch in text]]))[0], -1)[0].numpy()
    got = np.concatenate([model.stream().logits[None], stream_logits(model, text)])  # after <bos>, then each char
    named = [{"<s>": "<bos>", "</s>": "<eos>"}.get(t, t) for t in vocab]  # the user's specials under rnnkit's names
    np.testing.assert_allclose(log_softmax(got)[:, columns(model, named)], want, atol=ATOL)
    assert (got[:, model.vocab.unk_id] == NEVER).all()  # the module has no <unk> to predict
    assert model.metadata.bos and model.metadata.eos
    assert "rnnkit.framing" not in metadata(report.path)


def test_an_lm_without_bos_starts_its_streams_at_zero_state(tmp_path):
    torch.manual_seed(5)
    module = seeds.CharLM(len(CHARS), 8, 16, "GRU", num_layers=2)
    report, model = export(module, tmp_path, task="lm", vocab=CHARS)
    text = "北京天安门"
    stream = model.stream()
    assert stream.logits is None  # nothing is predicted before the first token
    with torch.no_grad():
        first = torch.log_softmax(module(ids(text[0]))[0], -1)[0, 0].numpy()  # one token from zero hidden
        want = torch.log_softmax(module(ids(text))[0], -1)[0].numpy()
    got = stream_logits(model, text)
    np.testing.assert_allclose(log_softmax(got[0])[columns(model, CHARS)], first, atol=ATOL)
    np.testing.assert_allclose(log_softmax(got)[:, columns(model, CHARS)], want, atol=ATOL)
    assert (got[:, :4] == NEVER).all()  # <pad> <unk> <bos> <eos>: none of them the module's
    assert json.loads(metadata(report.path)["rnnkit.framing"]) == {"bos": False, "eos": False}
    assert metadata(report.path)["rnnkit.unicode"] == unicodedata.unidata_version  # export_module records it too
    assert model.metadata.format == 3
    assert set("".join(model.generate("天", max_tokens=30, seed=0))) <= set(CHARS)  # never a special
    with pytest.raises(InputError, match="without <bos>"):
        model.generate("")


def test_a_word_language_model_from_pytorch_examples(tmp_path):
    """Seq-first GRU × 2, dropout, log_softmax over (seq·batch, ntoken); its corpus ends lines with <eos>."""
    stoi = {w: i for i, w in enumerate(WORD_VOCAB)}
    torch.manual_seed(6)
    module = seeds.WordLanguageModel("GRU", len(WORD_VOCAB), 6, 8, 2).eval()  # dropout off, as in evaluate()
    report, model = export(module, tmp_path, task="lm", vocab=WORD_VOCAB, tokenizer="whitespace")
    words = ["the", "dog", "sat", "on", "a", "mat"]
    with torch.no_grad():
        want = module(torch.tensor([[stoi[w]] for w in words]), torch.zeros(2, 1, 8))[0].numpy()  # (T, V)
    got = stream_logits(model, [w + " " for w in words])
    np.testing.assert_allclose(log_softmax(got)[:, columns(model, WORD_VOCAB)], want, atol=ATOL)
    assert (got[:, [model.vocab.pad_id, model.vocab.unk_id, model.vocab.bos_id]] == NEVER).all()
    assert json.loads(metadata(report.path)["rnnkit.framing"]) == {"bos": False, "eos": True}
    assert report.module["call"] == {"inputs": "ids", "seq_first": True, "state": True, "layout": "seq·batch, out",
                                     "output": "log_softmax", "batch": None}


# -- tag: the runtime's tags are the module's argmax --------------------------------------------------

def _check_tags(module, model, text, outputs, labels):
    """``model.tag(text)`` against ``outputs`` (T, n_labels), the module's own; logits too."""
    result = model.tag(text)
    assert [tok for tok, _ in result] == list(text)
    assert [tag for _, tag in result] == [labels[i] for i in outputs.argmax(-1)]
    logits, _ = model.run(np.array([model.encode(text)]), model.zero_state(1))
    np.testing.assert_allclose(logits[0], outputs, atol=ATOL)
    return result


def test_a_bmes_tagger_cuts_words_by_the_modules_tags(tmp_path):
    torch.manual_seed(7)
    module = seeds.Tagger(len(CHARS), 8, 16, 4)
    report, model = export(module, tmp_path, task="tag", vocab=CHARS, labels=BMES)
    text = "我爱北京天安门"
    with torch.no_grad():
        outputs = module(ids(text))[0].numpy()
    result = _check_tags(module, model, text, outputs, BMES)
    assert model.metadata.tag_scheme == "bmes"
    assert "".join(result.words) == text
    assert report.module["call"]["layout"] == "batch, seq, out"


@pytest.mark.parametrize("cell", ["RNN", "GRU", "LSTM"])
def test_a_seq_first_two_layer_tagger(cell, tmp_path):
    """Seeds 001–003's ``out, h = rnn(x, h0)`` with x (seq, batch), num_layers=2."""
    torch.manual_seed(8)
    module = seeds.SeqFirst(cell, len(CHARS), 6, 8, 3)
    report, model = export(module, tmp_path, task="tag", vocab=CHARS, labels=["N", "V", "X"])
    text = "hello 北京"
    h0 = torch.zeros(2, 1, 8)
    with torch.no_grad():
        outputs = module(ids(text).t(), (h0, h0) if cell == "LSTM" else h0)[0][:, 0].numpy()
    _check_tags(module, model, text, outputs, ["N", "V", "X"])
    assert model.metadata.tag_scheme == "tags"
    assert (model.metadata.cell, model.metadata.layers) == (cell.lower(), 2)
    assert report.module["call"]["seq_first"] and report.module["call"]["state"]


def test_a_relu_rnn_is_written_with_its_activation(tmp_path):
    torch.manual_seed(9)
    module = seeds.SeqFirst("RNN", len(CHARS), 6, 8, 3, nonlinearity="relu")
    report, model = export(module, tmp_path, task="tag", vocab=CHARS, labels=["N", "V", "X"])
    text = "天安门上太阳升"
    with torch.no_grad():
        outputs = module(ids(text).t(), torch.zeros(2, 1, 8))[0][:, 0].numpy()
    _check_tags(module, model, text, outputs, ["N", "V", "X"])
    assert metadata(report.path)["rnnkit.activation"] == "relu"
    assert model.metadata.activation == "relu"


# -- hello → ohlol, trained here as the course trains it ----------------------------------------------

def _train(net, inputs, labels, steps=100):
    criterion = torch.nn.CrossEntropyLoss()
    optimizer = torch.optim.Adam(net.parameters(), lr=0.1)
    for _ in range(steps):
        optimizer.zero_grad()
        loss = criterion(net(inputs), labels)
        loss.backward()
        optimizer.step()
    return net


def test_the_one_hot_hello_model_tags_hello_as_ohlol(tmp_path):
    """PyTorch深度学习实践's nn.RNN(4, 4): one-hot (seq, batch, 4) in, its hidden state is the output,
    a hard-coded batch size of 1."""
    torch.manual_seed(3)  # some seeds train weights whose 300 random steps onnxruntime rounds past atol 1e-5
    inputs = torch.eye(4)[seeds.x_data].view(seeds.seq_len, seeds.batch_size, 4)
    net = _train(seeds.Model(4, 4, seeds.batch_size), inputs, torch.LongTensor(seeds.y_data))
    report, model = export(net, tmp_path, task="tag", vocab=seeds.idx2char, labels=seeds.idx2char)
    assert "".join(tag for _, tag in model.tag("hello")) == "ohlol"
    assert report.module["call"] == {"inputs": "onehot", "seq_first": True, "state": False,
                                     "layout": "batch·seq, out", "output": "logits", "batch": 1}
    one_hot = torch.eye(4)[[1, 3, 2, 0, 0]]  # "holxe": x is no char of the course's, so no one-hot row
    one_hot[3] = 0
    with torch.no_grad():
        outputs = net(one_hot.view(5, 1, 4)).numpy()
    logits, _ = model.run(np.array([model.encode("holxe")]), model.zero_state(1))
    np.testing.assert_allclose(logits[0], outputs, atol=ATOL)


def test_the_embedding_hello_model_tags_hello_as_ohlol(tmp_path):
    torch.manual_seed(11)
    net = _train(seeds.EmbeddingModel(), torch.LongTensor([seeds.x_data]), torch.LongTensor(seeds.y_data))
    report, model = export(net, tmp_path, task="tag", vocab=seeds.idx2char, labels=seeds.idx2char)
    assert "".join(tag for _, tag in model.tag("hello")) == "ohlol"
    assert report.module["call"] == {"inputs": "ids", "seq_first": False, "state": False,
                                     "layout": "batch·seq, out", "output": "logits", "batch": None}


# -- cells: refused, then handed over with rnn_from_cell ----------------------------------------------

def test_the_course_rnncell_model_is_refused_with_the_hand_over(tmp_path):
    net = seeds.CellModel(4, 4, 1)
    with pytest.raises(ModuleError, match=r"rnn_from_cell\(model\.rnncell\)"):
        export_module(net, tmp_path / "m.onnx", task="tag", vocab=seeds.idx2char, labels=seeds.idx2char)
    assert list(tmp_path.iterdir()) == []


class HandOver(nn.Module):
    """A cell's weights in the equivalent layer, called over the whole (seq, batch, in) sequence."""

    def __init__(self, cell):
        super().__init__()
        self.rnn = rnn_from_cell(cell, batch_first=False)

    def forward(self, x):
        return self.rnn(x)[0]


def test_the_course_rnncell_handed_over_gives_its_loops_outputs(tmp_path):
    torch.manual_seed(12)
    net = seeds.CellModel(4, 4, 1)
    inputs = torch.eye(4)[seeds.x_data].view(seeds.seq_len, 1, 4)
    hidden, loop = net.init_hidden(), []
    with torch.no_grad():
        for input in inputs:  # the course's training loop
            hidden = net(input, hidden)
            loop.append(hidden[0].numpy())
    _, model = export(HandOver(net.rnncell), tmp_path, task="tag", vocab=seeds.idx2char, labels=seeds.idx2char)
    logits, _ = model.run(np.array([model.encode("hello")]), model.zero_state(1))
    np.testing.assert_allclose(logits[0], np.stack(loop), atol=ATOL)


@pytest.mark.parametrize("cell", ["RNNCell", "GRUCell", "LSTMCell"])
def test_a_cell_loop_is_refused_and_its_hand_over_matches_it(cell, tmp_path):
    torch.manual_seed(13)
    looped = seeds.CellLoop(cell, len(CHARS), 6)
    one_hot = {"task": "tag", "vocab": CHARS, "labels": [f"h{i}" for i in range(6)]}
    advice = rf"'cell' \({cell}\).*nn\.{cell[:-4]} with rnnkit\.export\.rnn_from_cell\(model\.cell\)"
    with pytest.raises(ModuleError, match=advice):
        export_module(looped, tmp_path / "m.onnx", **one_hot)
    assert list(tmp_path.iterdir()) == []
    _, model = export(HandOver(looped.cell), tmp_path, **one_hot)
    text = "hello 北京"
    with torch.no_grad():
        want = looped(torch.eye(len(CHARS))[[STOI[ch] for ch in text]][:, None])[:, 0].numpy()  # (T, H)
    logits, _ = model.run(np.array([model.encode(text)]), model.zero_state(1))
    np.testing.assert_allclose(logits[0], want, atol=ATOL)


def test_rnn_from_cell_takes_only_cells():
    with pytest.raises(ModuleError, match=r"takes an nn\.RNNCell, nn\.GRUCell or nn\.LSTMCell, got Linear"):
        rnn_from_cell(nn.Linear(2, 2))


# -- the file, the report, the module left as it was --------------------------------------------------

def test_the_report_and_provenance_hold_the_modules_own_forward(tmp_path):
    torch.manual_seed(14)
    report, model = export(_my_rnn(), tmp_path, task="classify", vocab=CHARS, labels=["a", "b", "c"],
                           source="seeds:my_RNN")
    rows = [c for c in report.parity.cases if c["case"].startswith("module forward")]
    assert {c["case"] for c in rows} >= {"module forward b=1 t=1", "module forward b=2 t=300"}
    assert {c["output"] for c in rows} == {"output", "hn"}  # my_RNN returns its hidden state too
    assert report.parity.mismatches == [] and report.parity.skipped == []
    module = model.metadata.provenance["module"]
    assert module["call"] == {"inputs": "ids", "seq_first": False, "state": True,
                              "layout": "batch, out (last step)", "output": "log_softmax", "batch": None}
    assert module["class"] == "seed_models.my_RNN" and module["factory"] == "seeds:my_RNN"
    assert module["parts"] == (f"embedding (Embedding {len(CHARS)}×8) → rnn (RNN 8→8 × 2, batch_first) → "
                              "fc (Linear 8→3) → LogSoftmax")
    assert module["source_ids"] == [-1, -1, -1, -1, *range(len(CHARS))]
    assert report.module == module


@pytest.mark.parametrize("training", ["train", "eval", "train, its dropout in eval"])
def test_export_leaves_the_module_as_it_was(training, tmp_path):
    torch.manual_seed(15)
    module = seeds.WordLanguageModel("LSTM", len(WORD_VOCAB), 6, 8, 2).train(training != "eval")  # dropout 0.5
    if "dropout" in training:
        module.drop.eval()
    modes = [m.training for m in module.modules()]
    weights = {k: v.clone() for k, v in module.state_dict().items()}
    rng = torch.get_rng_state()
    export_module(module, tmp_path / "m.onnx", task="lm", vocab=WORD_VOCAB, tokenizer="whitespace")
    assert [m.training for m in module.modules()] == modes
    assert torch.equal(torch.get_rng_state(), rng)
    assert module.state_dict().keys() == weights.keys()
    assert all(torch.equal(module.state_dict()[k], v) for k, v in weights.items())
    assert all(p.requires_grad for p in module.parameters())


def test_an_embedding_with_max_norm_answers_as_torch_and_keeps_its_rows(tmp_path):
    """nn.Embedding(max_norm=) renormalises the rows it looks up, in place, whenever the forward runs."""
    torch.manual_seed(17)
    module = seeds.Classifier("GRU", len(CHARS), 8, 2)
    module.embedding = nn.Embedding(len(CHARS), 8, max_norm=0.5)
    rows = module.embedding.weight.detach().clone()
    _, model = export(module, tmp_path, task="classify", vocab=CHARS, labels=["no", "yes"])
    assert torch.equal(module.embedding.weight, rows)
    with torch.no_grad():
        want = [torch.softmax(module(ids(t)), -1)[0, 1].item() for t in TEXTS]
    np.testing.assert_allclose([p.scores["yes"] for p in model.classify(TEXTS)], want, atol=ATOL)


@pytest.mark.parametrize("cell", ["RNN", "GRU", "LSTM"])
def test_a_module_without_biases(cell, tmp_path):
    """Equal zero biases in both layers: torch's exporter would write them once, behind an Identity."""
    torch.manual_seed(18)
    module = seeds.NoBias(cell, len(CHARS), 4, 8, 4)
    _, model = export(module, tmp_path, task="tag", vocab=CHARS, labels=BMES)
    text = "天安门上太阳升"
    with torch.no_grad():
        outputs = module(ids(text))[0].numpy()
    _check_tags(module, model, text, outputs, BMES)


def test_a_tolerance_tighter_than_float32_is_a_parity_error_not_a_refused_module(tmp_path):
    module = seeds.Classifier("LSTM", len(CHARS), 16, 3, num_layers=2)
    with pytest.raises(ParityError, match="ONNX and torch disagree"):
        export_module(module, tmp_path / "m.onnx", task="classify", vocab=CHARS, labels=["a", "b", "c"], atol=1e-9)
    assert list(tmp_path.iterdir()) == []


def test_a_float64_module_stays_float64(tmp_path):
    module = seeds.Classifier("GRU", len(CHARS), 8, 2).double()
    export_module(module, tmp_path / "m.onnx", task="classify", vocab=CHARS, labels=["no", "yes"])
    assert {p.dtype for p in module.parameters()} == {torch.float64}


def test_an_existing_file_is_kept_unless_overwrite(tmp_path):
    module = seeds.Tagger(len(CHARS), 4, 8, 4)
    (tmp_path / "m.onnx").write_bytes(b"mine")
    with pytest.raises(WriteError, match="already exists"):
        export_module(module, tmp_path / "m.onnx", task="tag", vocab=CHARS, labels=BMES)
    assert (tmp_path / "m.onnx").read_bytes() == b"mine"
    export_module(module, tmp_path / "m.onnx", task="tag", vocab=CHARS, labels=BMES, overwrite=True)
    assert load_model(tmp_path / "m.onnx").task == "tag"
