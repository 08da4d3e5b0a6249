"""CUDA: the same answers as the CPU. Skipped, with the reason, where onnxruntime has no CUDA."""

from __future__ import annotations

import numpy as np
import onnxruntime
import pytest
from factory import tiny_onnx

from rnnkit.runtime import load_model

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif("CUDAExecutionProvider" not in onnxruntime.get_available_providers(),
                       reason="no CUDAExecutionProvider in this onnxruntime (pip install 'rnnkit[gpu]' on a GPU host)"),
]
ATOL = 1e-4  # cuDNN's recurrent kernels sum in another order than the CPU's


@pytest.mark.parametrize(("task", "cell", "level"), [("lm", "lstm", "char"), ("classify", "gru", "word"),
                                                     ("tag", "rnn", "char")])
def test_cuda_matches_cpu(tmp_path, task, cell, level):
    path = tiny_onnx(tmp_path, task=task, cell=cell, layers=2, level=level, hidden=32)
    cpu = load_model(path, providers="cpu")
    gpu = load_model(path, providers="cuda")
    assert gpu.providers[0] == "CUDAExecutionProvider"

    ids = np.array([cpu.encode("这本书很好看，我喜欢。hello")])
    (cpu_logits, cpu_state), (gpu_logits, gpu_state) = cpu.run(ids), gpu.run(ids)
    for a, b in zip([cpu_logits, *cpu_state], [gpu_logits, *gpu_state]):
        np.testing.assert_allclose(b, a, atol=ATOL, rtol=0)

    s_cpu, s_gpu = cpu.stream(), gpu.stream()
    for t in ids[0]:
        np.testing.assert_allclose(s_gpu.step(int(t)), s_cpu.step(int(t)), atol=ATOL, rtol=0)
    streams = [gpu.stream() for _ in range(3)]
    gpu.batcher().feed(streams, ["我爱，", "", "这本书很好看。"])
    alone = cpu.stream()
    alone.feed("这本书很好看。")
    np.testing.assert_allclose(streams[2].logits, alone.logits, atol=ATOL, rtol=0)

    if task == "classify":
        texts = ["很好", "质量太差了，不推荐", "hello world"]
        for p, q in zip(gpu.classify(texts), cpu.classify(texts)):
            assert p.label == q.label and p.score == pytest.approx(q.score, abs=ATOL)
    elif task == "lm":
        assert list(gpu.generate("我", max_tokens=10, temperature=0)) == list(cpu.generate("我", max_tokens=10,
                                                                                            temperature=0))
    else:
        assert [g for _, g in gpu.tag("我爱北京")] == [g for _, g in cpu.tag("我爱北京")]
