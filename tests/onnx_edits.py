"""Edits of exported model files, for tests of what the runtime refuses."""

from __future__ import annotations

from pathlib import Path

import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, numpy_helper  # noqa: E402


def rewrite_metadata(src: Path, dst: Path, **changes: str | None) -> Path:
    """Copy the model at ``src`` to ``dst`` with ``rnnkit.<key>`` values replaced (None removes the key)."""
    model = onnx.load(str(src))
    props = {p.key: p.value for p in model.metadata_props}
    for key, value in changes.items():
        if value is None:
            props.pop("rnnkit." + key)
        else:
            props["rnnkit." + key] = value
    del model.metadata_props[:]
    for key, value in props.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(model, str(dst))
    return Path(dst)


def externalize(src: Path, folder: Path, location: str) -> tuple[Path, bytes]:
    """Copy the model at ``src`` into ``folder`` with its embedding stored as external data at ``location``.

    Returns the new model's path and the embedding's bytes (for the caller to place somewhere).
    """
    folder.mkdir(parents=True, exist_ok=True)
    model = onnx.load(str(src))
    init = next(i for i in model.graph.initializer if i.name == "model.embedding.weight")
    weights = numpy_helper.to_array(init)
    init.ClearField("raw_data")
    init.ClearField("float_data")
    init.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", "0"), ("length", str(weights.nbytes))):
        entry = init.external_data.add()
        entry.key, entry.value = key, value
    onnx.save(model, str(folder / "model.onnx"))
    return folder / "model.onnx", weights.tobytes()
