import numpy as np
import pytest

from infermeter.errors import UsageError
from infermeter.workload.lengths import LengthSpec


def test_fixed() -> None:
    s = LengthSpec.parse("128")
    assert s.fixed == 128 and s.sample(np.random.default_rng(0), 3) == [128, 128, 128]
    assert str(s) == "128"


def test_uniform_bounds_inclusive() -> None:
    s = LengthSpec.parse("uniform:10:12")
    got = s.sample(np.random.default_rng(0), 500)
    assert set(got) == {10, 11, 12}
    assert s.upper == 12


def test_normal_and_lognormal_are_clipped() -> None:
    s = LengthSpec.parse("normal:100:80:20:150")
    got = s.sample(np.random.default_rng(0), 2000)
    assert min(got) == 20 and max(got) == 150
    ln = LengthSpec.parse("lognormal:200:0.5:16:4096")
    med = float(np.median(ln.sample(np.random.default_rng(0), 5000)))
    assert med == pytest.approx(200, rel=0.05)


@pytest.mark.parametrize(
    "bad",
    [
        "0",
        "-3",
        "abc",
        "uniform:5",
        "uniform:9:3",
        "normal:0:1",
        "poisson:3:4",
        "normal:10:1:50:20",
    ],
)
def test_bad_specs_name_the_flag(bad: str) -> None:
    with pytest.raises(UsageError, match="--input-tokens"):
        LengthSpec.parse(bad, "--input-tokens")
