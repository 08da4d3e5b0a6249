"""Issue 4, parity: the exported graph computes what torch computes, for every cell, depth and shape.

One export per (cell, layers); then torch (``RNNModel`` under ``no_grad``) and onnxruntime run
the same tokens from the same random non-zero state, and every output must agree to 1e-5.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
onnxruntime = pytest.importorskip("onnxruntime")

from factory import tiny_checkpoint  # noqa: E402

from rnnkit.export import export_onnx  # noqa: E402
from rnnkit.export.graph import max_opset  # noqa: E402
from rnnkit.runtime.contract import INPUT_C0, INPUT_H0, INPUT_TOKENS  # noqa: E402
from rnnkit.runtime.errors import ExportError  # noqa: E402
from rnnkit.train.checkpoint import load_checkpoint, model_from_checkpoint, save_checkpoint  # noqa: E402
from rnnkit.train.model import ModelConfig, RNNModel  # noqa: E402

ATOL = 1e-5
CELLS = ("rnn", "gru", "lstm")
LAYERS = (1, 2, 3)
BATCHES = (1, 3, 17)
SEQS = (1, 2, 50, 300)
HIDDEN = 16


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """``exported(cell, layers)`` → (torch model, onnxruntime session), exported once each."""
    cache = {}

    def get(cell: str, layers: int):
        if (cell, layers) not in cache:
            folder = tmp_path_factory.mktemp(f"{cell}{layers}")
            ckpt = tiny_checkpoint(folder, task="lm", cell=cell, layers=layers, hidden=HIDDEN, embed=8,
                                   seed=layers)
            path = folder / "model.onnx"
            export_onnx(ckpt, path)
            model, _, _ = model_from_checkpoint(load_checkpoint(ckpt))
            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = 1
            session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
            cache[cell, layers] = model, session
        return cache[cell, layers]

    return get


def random_state(rng: np.random.Generator, cell: str, layers: int, batch: int) -> list[np.ndarray]:
    shape = (layers, batch, HIDDEN)  # (L, B, H)
    return [rng.uniform(-1, 1, shape).astype(np.float32) for _ in range(2 if cell == "lstm" else 1)]


@torch.no_grad()
def torch_run(model, tokens: np.ndarray, state: list[np.ndarray]) -> list[np.ndarray]:
    t_state = [torch.from_numpy(s.copy()) for s in state]
    logits, out = model(torch.from_numpy(tokens), tuple(t_state) if len(t_state) == 2 else t_state[0])
    out = out if isinstance(out, tuple) else (out,)
    return [logits.numpy(), *(s.numpy() for s in out)]


def onnx_run(session, tokens: np.ndarray, state: list[np.ndarray]) -> list[np.ndarray]:
    feed = {INPUT_TOKENS: tokens, INPUT_H0: state[0]}
    if len(state) == 2:
        feed[INPUT_C0] = state[1]
    return session.run(None, feed)


@pytest.mark.parametrize("seq", SEQS)
@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("layers", LAYERS)
@pytest.mark.parametrize("cell", CELLS)
def test_onnx_matches_torch(exported, cell, layers, batch, seq):
    model, session = exported(cell, layers)
    rng = np.random.default_rng([batch, seq, layers])
    tokens = rng.integers(0, model.config.vocab_size, (batch, seq), dtype=np.int64)  # (B, T)
    state = random_state(rng, cell, layers, batch)
    expected = torch_run(model, tokens, state)
    got = onnx_run(session, tokens, state)
    names = [o.name for o in session.get_outputs()]
    assert names == ["logits", "hn", "cn"][: len(expected)]
    assert got[0].shape == (batch, seq, model.config.n_out)
    for name, e, g in zip(names, expected, got):
        assert g.shape == e.shape, name
        assert g.dtype == np.float32, name
        diff = float(np.max(np.abs(e - g)))
        assert diff <= ATOL, f"{name}: max |Δ| {diff:.2e}"
    # the state really moved away from the random start, so hn/cn are not compared trivially
    assert not np.allclose(got[1], state[0], atol=1e-3)


@pytest.mark.parametrize("cell", CELLS)
def test_streaming_one_token_at_a_time_equals_the_whole_sequence(exported, cell):
    model, session = exported(cell, 2)
    rng = np.random.default_rng(7)
    tokens = rng.integers(0, model.config.vocab_size, (3, 40), dtype=np.int64)  # (B, T)
    start = random_state(rng, cell, 2, 3)
    whole = onnx_run(session, tokens, start)
    expected = torch_run(model, tokens, start)
    state, steps = start, []
    for t in range(tokens.shape[1]):
        out = onnx_run(session, np.ascontiguousarray(tokens[:, t : t + 1]), state)
        assert out[0].shape == (3, 1, model.config.n_out)
        steps.append(out[0])
        state = out[1:]
    streamed = [np.concatenate(steps, axis=1), *state]
    for s, w, e in zip(streamed, whole, expected):
        assert np.max(np.abs(s - w)) <= ATOL
        assert np.max(np.abs(s - e)) <= ATOL



# -- what else a checkpoint may ask for: opsets, tied weights, dropout ----------------------------
@pytest.mark.parametrize("opset", [14, 17, max_opset()])
def test_every_supported_opset_exports_with_parity(tmp_path, opset):
    ckpt = tiny_checkpoint(tmp_path, task="classify", cell="gru", layers=2, hidden=HIDDEN)
    path = tmp_path / "model.onnx"
    report = export_onnx(ckpt, path, opset=opset)
    assert report.parity.max_abs_diff <= ATOL
    assert [o.version for o in onnx.load(str(path)).opset_import if o.domain in ("", "ai.onnx")] == [opset]
    model, _, _ = model_from_checkpoint(load_checkpoint(ckpt))
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(opset)
    tokens = rng.integers(0, model.config.vocab_size, (5, 33), dtype=np.int64)
    state = random_state(rng, "gru", 2, 5)
    for e, g in zip(torch_run(model, tokens, state), onnx_run(session, tokens, state)):
        assert np.max(np.abs(e - g)) <= ATOL


@pytest.mark.parametrize("opset", [13, max_opset() + 1])
def test_an_unsupported_opset_is_refused_quietly(tmp_path, capfd, opset):
    ckpt = tiny_checkpoint(tmp_path / "run", task="classify", cell="gru")
    capfd.readouterr()
    with pytest.raises(ExportError, match=rf"opset {opset} is not supported; use 14\.\.{max_opset()}"):
        export_onnx(ckpt, tmp_path / "model.onnx", opset=opset)
    assert capfd.readouterr() == ("", "")  # torch dumps its IR graph when asked for an opset it lacks
    assert not (tmp_path / "model.onnx").exists()


@pytest.mark.parametrize("cell", CELLS)
def test_tied_weights_and_dropout_export_with_parity(tmp_path, cell):
    base = torch.load(tiny_checkpoint(tmp_path / "base", task="lm", cell=cell), weights_only=True)
    vocab = base["model_config"]["vocab_size"]
    config = ModelConfig(cell=cell, vocab_size=vocab, n_out=vocab, embed=HIDDEN, hidden=HIDDEN, layers=2,
                         dropout=0.4, tie_weights=True)
    torch.manual_seed(1)
    trained = RNNModel(config)
    payload = {k: v for k, v in base.items() if k not in ("rnnkit_checkpoint", "rnnkit", "torch", "created")}
    ckpt = save_checkpoint({**payload, "model_config": config.to_dict(), "model": trained.state_dict()},
                           tmp_path / "run" / "checkpoint.pt")
    path = tmp_path / "model.onnx"
    export_onnx(ckpt, path)
    model, _, _ = model_from_checkpoint(load_checkpoint(ckpt))
    assert not model.training  # dropout off, as in the graph
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(3)
    tokens = rng.integers(0, vocab, (4, 60), dtype=np.int64)
    state = random_state(rng, cell, 2, 4)
    for e, g in zip(torch_run(model, tokens, state), onnx_run(session, tokens, state)):
        assert np.max(np.abs(e - g)) <= ATOL
