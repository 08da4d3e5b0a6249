"""Training on a CUDA GPU: cuDNN kernels, AMP with its scaler's state through --resume, nccl DDP with
one rank per GPU. Skipped where torch sees no GPU."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from rnnkit.train import trainer  # noqa: E402
from rnnkit.train.checkpoint import load_checkpoint  # noqa: E402
from rnnkit.train.config import TrainConfig  # noqa: E402

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]


def config(out, **extra) -> TrainConfig:
    return TrainConfig(**{"task": "lm", "data": "builtin:reviews", "out": str(out), "limit": 40, "max_steps": 12,
                          "batch_size": 8, "bptt": 8, "hidden": 32, "embed": 16, "save_every": 5, "device": "cuda",
                          "seed": 5, **extra})


def test_cuda_training_uses_cudnn_and_learns(tmp_path):
    assert torch.backends.cudnn.is_available()
    result = trainer.train(config(tmp_path / "run"))
    assert result.metrics["device"].startswith("cuda") and result.history[-1]["step"] == 12
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"] * 1.5


@pytest.mark.parametrize("amp", ["fp16", "bf16"])
def test_amp_resumes_with_its_scaler_state(tmp_path, amp):
    if amp == "bf16" and not torch.cuda.is_bf16_supported():
        pytest.skip("this GPU has no bfloat16")
    step = trainer._Run._step

    def stopping(self, batch):
        if self.pos["step"] + 1 >= 8:
            raise KeyboardInterrupt
        return step(self, batch)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(trainer._Run, "_step", stopping)
        with pytest.raises(KeyboardInterrupt):
            trainer.train(config(tmp_path / "run", amp=amp))
    last = load_checkpoint(tmp_path / "run", name="last.pt")
    assert ("scale" in last["precision"]) == (amp == "fp16")
    result = trainer.train(config(tmp_path / "run", amp=amp), resume=True)
    assert result.history[-1]["step"] == 12
    assert all(torch.isfinite(t).all() for t in load_checkpoint(tmp_path / "run")["model"].values())


def test_nccl_ddp_one_rank_per_gpu(tmp_path):
    n = min(torch.cuda.device_count(), 2)
    if n < 1 or not torch.distributed.is_nccl_available():
        pytest.skip("needs nccl")
    result = trainer.train(config(tmp_path / "run", nproc_per_node=n))
    assert result.metrics["world_size"] == n and result.metrics["device"].startswith("cuda")
