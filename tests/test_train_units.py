"""Pieces of the trainer on their own: padded classification, BPTT chunks, the carried state."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from rnnkit.train import trainer  # noqa: E402
from rnnkit.train.batches import IGNORE, LMStream, SequenceSet  # noqa: E402
from rnnkit.train.config import TrainConfig  # noqa: E402
from rnnkit.train.evaluate import batch_loss  # noqa: E402
from rnnkit.train.model import ModelConfig, RNNModel  # noqa: E402

CELLS = ["rnn", "gru", "lstm"]


def model(cell: str, vocab: int = 12, n_out: int = 3, layers: int = 2) -> RNNModel:
    torch.manual_seed(0)
    return RNNModel(ModelConfig(cell=cell, vocab_size=vocab, n_out=n_out, embed=6, hidden=8, layers=layers)).eval()


# --- 8. classification reads the last real step ---------------------------------------------


@pytest.mark.parametrize("cell", CELLS)
def test_padding_after_a_text_does_not_change_its_logits(cell):
    m = model(cell)
    seqs = [[5, 6, 7], [4, 5, 6, 7, 8, 9, 10], [11]]
    data = SequenceSet(seqs, [0, 1, 2], pad_id=0, per_token=False)
    batch = data.batch([0, 1, 2])
    assert batch.tokens.shape == (3, 7) and batch.tokens[0, 3:].eq(0).all()  # padded after the text
    with torch.no_grad():
        loss, last, _ = batch_loss(m, batch, "classify")  # last: (3, n_out)
        for row, seq in enumerate(seqs):
            alone = data.batch([row])
            assert alone.tokens.shape == (1, len(seq))  # no padding at all
            _, own, _ = batch_loss(m, alone, "classify")
            torch.testing.assert_close(last[row], own[0], rtol=0, atol=1e-6)
        # The padded positions do change the outputs: reading the last column would be wrong.
        logits, _ = m(batch.tokens)  # (3, 7, n_out)
        assert not torch.allclose(logits[0, -1], last[0], atol=1e-4)
    expected = torch.nn.functional.cross_entropy(last, torch.tensor([0, 1, 2]))
    torch.testing.assert_close(loss, expected)


def test_tag_targets_ignore_the_padding():
    data = SequenceSet([[5, 6], [5, 6, 7, 8]], [[1, 2], [0, 1, 2, 0]], pad_id=0, per_token=True)
    batch = data.batch([0, 1])
    assert batch.targets.tolist() == [[1, 2, IGNORE, IGNORE], [0, 1, 2, 0]]
    assert batch.lengths.tolist() == [2, 4] and batch.n_tokens == 6
    m = model("gru")
    with torch.no_grad():
        loss, logits, _ = batch_loss(m, batch, "tag")
        real = torch.cat([logits[0, :2], logits[1]])  # (6, n_out)
        torch.testing.assert_close(loss, torch.nn.functional.cross_entropy(real, torch.tensor([1, 2, 0, 1, 2, 0])))


def test_a_lookahead_tagger_reads_the_next_ids_and_its_tags_come_later():
    from rnnkit.runtime import Vocabulary
    from rnnkit.train.batches import encode_sequences

    vocab = Vocabulary.build([list("abcdef")])
    index = {"X": 0, "Y": 1}
    items = [(list("abcdef"), list("XYXYXY"))]
    data, dropped = encode_sequences(items, "tag", vocab, index, max_len=4, lookahead=2)
    ids = vocab.encode(list("abcdef"))
    assert dropped == 0
    # window 1 reads 2 real ids past its 4 tokens; window 2 runs out of text and reads <pad>
    assert data.seqs == [ids[0:6], ids[4:6] + [vocab.pad_id] * 2]
    assert data.targets == [[IGNORE, IGNORE, 0, 1, 0, 1], [IGNORE, IGNORE, 0, 1]]
    plain, _ = encode_sequences(items, "tag", vocab, index, max_len=4)
    assert plain.seqs == [ids[0:4], ids[4:6]] and plain.targets == [[0, 1, 0, 1], [0, 1]]


def test_batch_order_is_a_seeded_permutation_of_every_example():
    data = SequenceSet([[1] * (i % 7 + 1) for i in range(50)], list(range(50)), pad_id=0, per_token=False)
    first = data.order(8, seed=3, epoch=0)
    assert sorted(i for b in first for i in b) == list(range(50))
    assert first == data.order(8, seed=3, epoch=0)
    assert first != data.order(8, seed=3, epoch=1) and first != data.order(8, seed=4, epoch=0)


# --- 9. LM BPTT -----------------------------------------------------------------------------


@pytest.mark.parametrize(("n", "rows", "bptt"), [(103, 4, 8), (50, 3, 7), (9, 8, 4), (64, 1, 64)])
def test_lm_chunks_tile_the_stream(n, rows, bptt):
    ids = torch.arange(n)
    stream = LMStream(ids, rows, bptt)
    chunks = list(stream.batches())
    assert len(chunks) == len(stream)
    rows_used, width = stream.data.shape
    assert rows_used <= rows and rows_used * width > n - rows_used  # at most rows - 1 tokens cut off the end
    assert torch.equal(stream.data.flatten(), ids[: rows_used * width])
    inputs = torch.cat([b.tokens for b in chunks], dim=1)  # (B, width - 1)
    targets = torch.cat([b.targets for b in chunks], dim=1)  # (B, width - 1)
    assert torch.equal(inputs, stream.data[:, :-1])  # every position read once, in order
    assert torch.equal(targets, stream.data[:, 1:])  # each target is the next token
    assert all(b.tokens.shape[1] <= bptt and b.tokens.shape == b.targets.shape for b in chunks)
    assert sum(b.n_tokens for b in chunks) == stream.n_tokens == rows_used * (width - 1)
    for start in range(len(chunks)):  # resuming at chunk k yields the same chunks from k on
        rest = list(stream.batches(start))
        assert len(rest) == len(chunks) - start
        assert all(torch.equal(a.tokens, b.tokens) for a, b in zip(rest, chunks[start:]))


def test_empty_lm_stream_has_no_chunks():
    assert len(LMStream(torch.tensor([], dtype=torch.long), 4, 8)) == 0
    assert list(LMStream(torch.tensor([2]), 4, 8).batches()) == []


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_trainer_carries_the_detached_state_between_chunks(tmp_path, monkeypatch, cell):
    text = tmp_path / "text.txt"
    text.write_text("\n".join("abcdefghij"[i % 10:] + "abcdefghij"[: i % 10] for i in range(20)), encoding="utf-8")
    cfg = TrainConfig(task="lm", data=str(text), out=str(tmp_path / "run"), cell=cell, hidden=8, embed=4,
                      batch_size=2, bptt=16, epochs=2, device="cpu", patience=0)
    seen = []
    real_loss = trainer.batch_loss

    def recording_loss(m, batch, task, state=None):
        seen.append(state)
        loss, logits, new_state = real_loss(m, batch, task, state)
        seen.append(new_state)
        return loss, logits, new_state

    monkeypatch.setattr(trainer, "batch_loss", recording_loss)
    run = trainer._Run(cfg, None, progress=False)
    chunks = list(run._epoch_batches(0, 0))
    assert len(chunks) >= 3
    for k, chunk in enumerate(chunks):
        run._step(chunk)
        carried = run.carry if cell != "lstm" else run.carry[0]
        assert carried is not None and carried.shape == (1, 2, 8)
        assert not carried.requires_grad and carried.grad_fn is None  # cut from the graph
        given, produced = seen[2 * k], seen[2 * k + 1]
        if k == 0:
            assert given is None  # an epoch starts from a zero state
        else:
            # the state this chunk started from is the one the previous chunk ended with
            previous = seen[2 * k - 1]
            pairs = zip(given, previous) if cell == "lstm" else [(given, previous)]
            assert all(torch.equal(a, b.detach()) for a, b in pairs)
        final = produced if cell != "lstm" else produced[0]
        assert torch.equal(carried, final.detach())
    # a new epoch starts again from zero
    next(iter(run._epoch_batches(1, 0)))
    assert run.carry is None


@pytest.mark.parametrize(("mode", "says"), [
    ("shuffled", "train 8, valid 1, test 1 (shuffled 80/10/10%, seed 3)"),
    ("contiguous", "train 8, valid 1, test 1 (contiguous 80/10/10% of the text, seed 3)"),
    ("full", "train 8, valid 1, test 1 (too small to split: valid and test are the training data, seed 3)"),
])
def test_a_split_describes_itself_in_words(mode, says):
    from rnnkit.train.data import Split

    assert Split([0] * 8, [0], [0], seed=3, fractions=(0.8, 0.1, 0.1), mode=mode).describe() == says


def test_training_logs_its_split_as_a_sentence_not_a_dict(tmp_path, caplog):
    import logging

    from rnnkit.train import TrainConfig as Config
    from rnnkit.train import train

    with caplog.at_level(logging.INFO, logger="rnnkit.train.trainer"):
        train(Config(task="tag", data="builtin:hello", out=str(tmp_path / "run"), max_steps=2, epochs=1,
                     hidden=8, embed=4))
    ready = [r.getMessage() for r in caplog.records if r.getMessage().startswith("data ready")]
    assert len(ready) == 1 and "{" not in ready[0]
    assert "train 1, valid 1, test 1 (too small to split" in ready[0] and ready[0].endswith(", seed 0)")


@pytest.mark.parametrize(("terminal", "progress", "shown"), [(True, None, True), (False, None, False),
                                                             (True, False, False), (False, True, True)])
def test_train_shows_progress_on_a_terminal_unless_told(tmp_path, capfd, monkeypatch, terminal, progress, shown):
    from rnnkit.train import TrainConfig as Config
    from rnnkit.train import train

    monkeypatch.setattr(trainer, "_stderr_is_terminal", lambda: terminal)
    capfd.readouterr()
    train(Config(task="tag", data="builtin:hello", out=str(tmp_path / "run"), max_steps=2, epochs=1, hidden=8,
                 embed=4), progress=progress)
    assert ("training:" in capfd.readouterr().err) == shown
