"""Catalogue cases: scoring a model on labelled data (``model.evaluate``, ``rnnkit evaluate``) and text
already cut into tokens (``tag(tokens=)``, ``classify(tokens=)``), E261–E280."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from catalogue import Case, Ctx


def scored(name: str, data: Callable[[Ctx], Path | str], *, skip_bad: bool = False) -> Case:
    """``model.evaluate(data)`` on the catalogue's ``name`` model, and ``rnnkit evaluate MODEL --data data``."""
    flags = ["--skip-bad"] if skip_bad else []
    return Case(lambda c: c.model(name).evaluate(data(c), skip_bad=skip_bad),
                lambda c: ["evaluate", getattr(c, name), "--data", data(c), *flags])


def text(name: str, content: str) -> Callable[[Ctx], Path]:
    return lambda c: c.file(name, content.encode("utf-8"))


def clf(c: Ctx):
    return c.model("clf")


def tagger(c: Ctx):
    return c.model("tagger")


CASES: dict[str, Case] = {
    # files that do not fit the model's task, read as training reads them
    "E261": scored("clf", lambda c: c.path("no-such-data.tsv")),
    "E262": scored("clf", lambda c: c.folder_named_like_data),
    "E263": scored("clf", text("tagged.txt", "我/r 爱/v\n")),
    "E264": scored("tagger", text("reviews.tsv", "pos\tgood\n")),
    "E265": scored("clf", text("reviews.csv", "pos,good\n")),
    "E266": scored("clf", text("other-labels.tsv", "mid\t一般\nmeh\t嗯\n")),
    "E267": scored("tagger", text("pos-tags.txt", "我/r 爱/v 北京/ns\n")),
    "E268": scored("clf", text("all-bad.tsv", "no tab\nnone here either\n"), skip_bad=True),
    # options and arguments
    "E269": Case(lambda c: clf(c).evaluate("builtin:reviews"),
                 lambda c: ["evaluate", c.clf, "--data", "builtin:reviews"]),
    "E270": Case(lambda c: clf(c).evaluate([("好", "pos")], batch_size=0),
                 lambda c: ["evaluate", c.clf, "--data", text("one.tsv", "pos\t好\n")(c), "--batch-size", "0"]),
    "E271": Case(lambda c: clf(c).evaluate(5)),
    "E272": Case(lambda c: clf(c).evaluate([])),
    "E273": Case(lambda c: clf(c).evaluate(["这本书很好"])),
    "E274": Case(lambda c: tagger(c).evaluate([(["我", "爱"], ["S"])])),
    # tokens=
    "E275": Case(lambda c: tagger(c).tag("我爱", tokens=["我", "爱"])),
    "E276": Case(lambda c: clf(c).classify()),
    "E277": Case(lambda c: tagger(c).tag(tokens=[["我", 1]])),
    "E278": Case(lambda c: clf(c).classify(tokens="好看")),
    "E279": Case(lambda c: tagger(c).tag(tokens=[])),
    "E280": Case(lambda c: clf(c).classify(tokens=["好", ""])),
}
