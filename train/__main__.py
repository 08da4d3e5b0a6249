"""``python -m rnnkit.train …`` is ``rnnkit train …``; so ``torchrun --nproc-per-node N -m rnnkit.train …``
starts N workers of one run (each reads RANK, WORLD_SIZE and LOCAL_RANK from torchrun)."""

from __future__ import annotations

import sys

from rnnkit.runtime.cli import main

# Guarded: a spawned worker imports this module again (as __mp_main__) and must not start a run.
if __name__ == "__main__":
    main(["train", *sys.argv[1:]])
