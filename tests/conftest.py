"""Shared test helpers. Tests make their own tiny data and models; nothing is downloaded."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import textwrap

import pytest

# Tiny models train fastest on one thread, and two test processes sharing a 2-core machine
# must not oversubscribe it: torch reads this when it starts.
os.environ.setdefault("OMP_NUM_THREADS", "1")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_python(code: str, *, block: tuple[str, ...] = (), timeout: float = 120) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter where the modules in ``block`` cannot be imported."""
    prelude = textwrap.dedent(
        f"""
        import sys
        class _Block:
            names = {set(block)!r}
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in self.names:
                    raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        sys.meta_path.insert(0, _Block())
        """
    )
    return subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(code)],
        capture_output=True, text=True, timeout=timeout, cwd=ROOT,
    )


@pytest.fixture
def fresh_python():
    return run_python


@pytest.fixture(scope="session")
def models(tmp_path_factory):
    """``models(**tiny_onnx kwargs)``: a loaded tiny model, exported once per session and kwargs."""
    from factory import tiny_onnx

    from rnnkit.runtime import load_model

    cache = {}

    def get(**kwargs):
        key = tuple(sorted(kwargs.items()))
        if key not in cache:
            cache[key] = load_model(tiny_onnx(tmp_path_factory.mktemp("model"), **kwargs))
        return cache[key]

    return get


NOBODY = 65534  # the uid file permissions are tested as when the tests run as root


@contextlib.contextmanager
def unprivileged():
    """Run the block as a user that file permissions apply to: nobody, when the tests run as root."""
    if os.geteuid() != 0:
        yield
        return
    try:
        os.seteuid(NOBODY)
    except OSError as e:
        pytest.skip(f"running as root and cannot drop privileges to test permissions: {e}")
    try:
        yield
    finally:
        os.seteuid(0)


@pytest.fixture(autouse=True)
def _torch_on_one_thread():
    """Tiny models train fastest on one thread; restore whatever a test changed."""
    torch = sys.modules.get("torch")
    if torch is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
