"""SplitMix64 (Steele, Lea & Flood 2014): the seeded generator of ``Model.generate``.

Chosen for being a few lines of 64-bit integer arithmetic that every language computes
exactly alike, so a seed gives the same text in every runtime (docs/FORMAT.md, *Generation*).

>>> g = SplitMix64(1234567)
>>> g.next(), g.next()
(6457827717110365317, 3203168211198807973)
"""

from __future__ import annotations

from .errors import ConfigError

__all__ = ["SplitMix64"]

_MASK = (1 << 64) - 1
_GAMMA = 0x9E3779B97F4A7C15
_MIX1 = 0xBF58476D1CE4E5B9
_MIX2 = 0x94D049BB133111EB


class SplitMix64:
    """A stream of 64-bit outputs from a seed (an integer 0 … 2^64 − 1)."""

    def __init__(self, seed: int) -> None:
        if not isinstance(seed, int) or not 0 <= seed <= _MASK:
            raise ConfigError(f"a SplitMix64 seed is an integer 0 … 2^64 - 1, got {seed}")
        self.state = seed

    def next(self) -> int:
        """The next output, 0 … 2^64 − 1."""
        self.state = (self.state + _GAMMA) & _MASK
        z = self.state
        z = ((z ^ (z >> 30)) * _MIX1) & _MASK
        z = ((z ^ (z >> 27)) * _MIX2) & _MASK
        return z ^ (z >> 31)

    def uniform(self) -> float:
        """A float64 in [0, 1): the top 53 bits of the next output, times 2^-53 (exact)."""
        return (self.next() >> 11) * 2.0**-53
