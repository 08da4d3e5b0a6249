"""Catalogue cases: torch modules export_module cannot map, and vocabularies, labels and options
that do not fit the module (tests/seed_models.py holds the modules)."""

from __future__ import annotations

import seed_models as seeds
from catalogue import Case, Ctx

from rnnkit.export import export_module

DIGITS = [str(i) for i in range(10)]


def classify(c: Ctx, module, **options):
    """``module`` exported as a two-label classifier over the tokens 0–9 (``options`` replace those)."""
    return export_module(module, c.fresh("m.onnx"), **{"task": "classify", "vocab": DIGITS, "labels": ["no", "yes"],
                                                        **options})


def tag(c: Ctx, module, labels):
    return export_module(module, c.fresh("m.onnx"), task="tag", vocab=DIGITS, labels=labels)


def gru():
    return seeds.Classifier("GRU", 10, 8, 2)


CASES: dict[str, Case] = {
    "E320": Case(lambda c: classify(c, seeds.Bidirectional())),
    "E321": Case(lambda c: classify(c, seeds.TwoRNNs())),
    "E322": Case(lambda c: tag(c, seeds.CellModel(10, 4, 1), list("abcd"))),
    "E323": Case(lambda c: tag(c, seeds.CellLoop("GRUCell", 10, 4), list("abcd"))),
    "E324": Case(lambda c: tag(c, seeds.CellLoop("LSTMCell", 10, 4), list("abcd"))),
    "E325": Case(lambda c: classify(c, seeds.Attention())),
    "E326": Case(lambda c: tag(c, seeds.RNN(10, 8, 8), list("abcdefgh"))),
    "E327": Case(lambda c: classify(c, seeds.NoRNN())),
    "E328": Case(lambda c: classify(c, seeds.MLPHead())),
    "E329": Case(lambda c: classify(c, seeds.Normed())),
    "E330": Case(lambda c: classify(c, seeds.LearnedStart())),
    "E331": Case(lambda c: classify(c, seeds.Projected())),
    "E332": Case(lambda c: classify(c, seeds.WideEmbedding())),
    "E333": Case(lambda c: classify(c, seeds.WideHead())),
    "E334": Case(lambda c: classify(c, seeds.ReluBetween())),
    "E335": Case(lambda c: classify(c, seeds.ReturnsDict())),
    "E336": Case(lambda c: classify(c, gru(), labels=["a", "b", "c"])),
    "E337": Case(lambda c: classify(c, seeds.CharLM(10, 4, 8), task="lm", vocab=DIGITS[:9], labels=None)),
    "E338": Case(lambda c: classify(c, gru(), vocab=["a", "b", "a"])),
    "E339": Case(lambda c: classify(c, gru(), vocab={"a": 0, "b": 12})),
    "E340": Case(lambda c: classify(c, gru(), tokenizer="bpe")),
    "E341": Case(lambda c: classify(c, gru(), task="translate")),
    "E342": Case(lambda c: classify(c, gru().state_dict())),
    "E343": Case(lambda c: classify(c, gru(), specials={"unk": "[UNK]"})),
    "E344": Case(lambda c: classify(c, seeds.CharLM(10, 4, 8), task="lm")),
}
