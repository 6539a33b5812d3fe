"""Token-length distributions for prompts and outputs, seeded and bounded.

Written on the command line as ``512`` (fixed), ``uniform:MIN:MAX``,
``normal:MEAN:STD[:MIN:MAX]`` or ``lognormal:MEDIAN:SIGMA[:MIN:MAX]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from infermeter.errors import UsageError

LengthKind = Literal["fixed", "uniform", "normal", "lognormal"]


@dataclass(frozen=True, slots=True)
class LengthSpec:
    kind: LengthKind
    a: float
    b: float = 0.0
    lo: int = 1
    hi: int | None = None

    @property
    def fixed(self) -> int | None:
        return int(self.a) if self.kind == "fixed" else None

    @property
    def upper(self) -> int:
        """The largest length this spec can produce (for context-size checks)."""
        if self.kind == "fixed":
            return int(self.a)
        if self.kind == "uniform":
            return int(self.b)
        if self.hi is not None:
            return self.hi
        return (
            int(self.a + 6 * self.b) if self.kind == "normal" else int(self.a * np.exp(6 * self.b))
        )

    def sample(self, rng: np.random.Generator, n: int) -> list[int]:
        if self.kind == "fixed":
            return [int(self.a)] * n
        if self.kind == "uniform":
            return [int(x) for x in rng.integers(int(self.a), int(self.b), size=n, endpoint=True)]
        if self.kind == "normal":
            raw = rng.normal(self.a, self.b, size=n)
        else:
            raw = rng.lognormal(np.log(self.a), self.b, size=n)
        hi = self.hi if self.hi is not None else np.inf
        return [int(x) for x in np.clip(np.rint(raw), self.lo, hi)]

    def __str__(self) -> str:
        if self.kind == "fixed":
            return str(int(self.a))
        if self.kind == "uniform":
            return f"uniform:{int(self.a)}:{int(self.b)}"
        bounds = f":{self.lo}:{self.hi}" if self.hi is not None else ""
        return f"{self.kind}:{self.a:g}:{self.b:g}{bounds}"

    @classmethod
    def parse(cls, text: str | int, flag: str = "--input-tokens") -> LengthSpec:
        raw = str(text).strip()
        parts = raw.split(":")
        usage = (
            f"{flag}: cannot read {raw!r}; use N, uniform:MIN:MAX, normal:MEAN:STD[:MIN:MAX] "
            "or lognormal:MEDIAN:SIGMA[:MIN:MAX]"
        )
        try:
            if len(parts) == 1:
                n = int(parts[0])
                if n < 1:
                    raise UsageError(f"{flag} must be at least 1, got {n}")
                return cls("fixed", n)
            kind, nums = parts[0], [float(p) for p in parts[1:]]
        except ValueError:
            raise UsageError(usage) from None
        if kind == "uniform" and len(nums) == 2:
            u_lo, u_hi = nums
            if not 1 <= u_lo <= u_hi:
                raise UsageError(f"{flag}: uniform needs 1 <= MIN <= MAX, got {raw!r}")
            return cls("uniform", u_lo, u_hi, int(u_lo), int(u_hi))
        if kind in ("normal", "lognormal") and len(nums) in (2, 4):
            a, b = nums[0], nums[1]
            lo = int(nums[2]) if len(nums) == 4 else 1
            hi: int | None = int(nums[3]) if len(nums) == 4 else None
            if a <= 0 or b < 0 or lo < 1 or (hi is not None and hi < lo):
                raise UsageError(
                    f"{flag}: {raw!r} has a non-positive centre, negative spread or empty bounds"
                )
            return cls(kind, a, b, lo, hi)  # type: ignore[arg-type]
        raise UsageError(usage)
