"""Catalogue cases: training on many processes (E410–E419: the launch options, LAUNCH; E400–E409: the
workers, DIST). Every launch option is refused before a worker starts, so these cases launch nothing."""

from __future__ import annotations

from catalogue import HELLO, Case, hello

from rnnkit.train.config import TrainConfig
from rnnkit.train.trainer import train


def launch_case(**options) -> Case:
    """``train(TrainConfig(**options))`` and ``rnnkit train … --option value`` for the same options."""
    def argv(c):
        flags = []
        for name, value in options.items():
            flags += [f"--{name.replace('_', '-')}", str(value)]
        return ["train", *HELLO, "--out", c.fresh("run"), *flags]
    return Case(lambda c: train(TrainConfig(**{**hello(c.fresh("run")).to_dict(), **options})), argv)


CASES: dict[str, Case] = {
    "E410": launch_case(nproc_per_node=0),
    "E411": launch_case(nproc_per_node=2, batch_size=5),
    "E412": launch_case(nnodes="two"),
    "E413": launch_case(nnodes="2"),
    "E414": launch_case(nnodes="2", rdzv_endpoint="localhost:99999"),
    "E415": launch_case(node_rank=0),
    "E416": launch_case(nnodes="2", rdzv_endpoint="localhost:29400", node_rank=2),
    "E417": launch_case(max_restarts=10**6),
    "E418": launch_case(amp="fp16"),  # HELLO trains on --device cpu
    "E419": launch_case(amp="fp8"),
}

# DIST
