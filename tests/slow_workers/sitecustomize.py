"""Put on PYTHONPATH by tests/test_distributed_launch.py for the runs it starts: with
RNNKIT_TEST_STEP_SECONDS set, every AdamW step of every process (the launcher's workers too: they
inherit the environment) first sleeps that long, so a test can kill a worker in the middle of a run."""

import os

_SECONDS = float(os.environ.get("RNNKIT_TEST_STEP_SECONDS") or 0)

if _SECONDS:
    import time

    import torch

    _step = torch.optim.AdamW.step

    def _slow_step(self, *args, **kwargs):
        time.sleep(_SECONDS)
        return _step(self, *args, **kwargs)

    torch.optim.AdamW.step = _slow_step
