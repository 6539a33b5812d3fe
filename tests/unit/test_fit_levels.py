"""Two step levels at one batch size: found where they are, not in one level's spread."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from infermeter.predict.fit import _two_levels, levels_note, step_levels
from infermeter.predict.model import StepLevels, StepPoint, level_notes

RNG = np.random.default_rng(7)


def _level(ms: float, n: int) -> np.ndarray:
    return ms * (1 + 0.03 * RNG.standard_normal(n))


def test_two_levels_are_found_with_their_medians_and_share() -> None:
    gaps = RNG.permutation(np.concatenate([_level(25.8, 210), _level(64.0, 90)]))
    found = _two_levels(gaps)
    assert found is not None
    fast, slow, share = found
    assert abs(fast - 25.8) < 0.5 and abs(slow - 64.0) < 1.5
    assert abs(share - 0.3) < 0.02


def test_one_level_is_not_two() -> None:
    # a normal spread, a wide one, and a step that grows with the context (uniform)
    assert _two_levels(_level(25.0, 400)) is None
    assert _two_levels(25.0 * (1 + 0.15 * RNG.standard_normal(400))) is None
    assert _two_levels(np.linspace(20.0, 32.0, 400)) is None


def test_too_few_gaps_or_a_rare_level_say_nothing() -> None:
    assert _two_levels(np.concatenate([_level(25.0, 100), _level(64.0, 50)])) is None
    assert _two_levels(np.concatenate([_level(25.0, 380), _level(64.0, 15)])) is None
    # close levels are one engine's ordinary spread, not two modes
    assert _two_levels(np.concatenate([_level(25.0, 200), _level(29.0, 200)])) is None


def test_the_note_names_each_batch_size_with_two_levels() -> None:
    gaps = np.concatenate([_level(25.8, 210), _level(64.0, 90), _level(30.0, 300)])
    batch = np.array([12] * 300 + [16] * 300)
    points = [
        StepPoint(batch=12, step_ms=27.0, ctx_tokens=600.0, samples=300),
        StepPoint(batch=16, step_ms=30.0, ctx_tokens=600.0, samples=300),
    ]
    found = step_levels(gaps, batch, points)
    assert [lv.batch for lv in found] == [12]
    note = levels_note(found)
    assert note is not None
    assert "12 sequences: 25." in note and "30 % of steps slow" in note
    assert "16 sequences" not in note
    assert step_levels(_level(30.0, 600), batch, points) == []
    assert levels_note([]) is None


def test_a_simulated_load_hears_of_levels_near_its_batch_only() -> None:
    from infermeter.predict.model import EngineModel

    model = EngineModel.model_validate_json(
        (Path(__file__).parents[2] / "docs/results/replicas/engine.json").read_text()
    )
    assert level_notes(model, 8.0) == []  # a model without levels: nothing
    levels = [StepLevels(batch=8, fast_ms=24.1, slow_ms=61.1, slow_share=0.74)]
    quality = model.quality.model_copy(update={"levels": levels})
    leveled = model.model_copy(update={"quality": quality})
    (note,) = level_notes(leveled, 7.8)
    assert "8 sequences: 24.1 and 61.1 ms, 74 % of steps slow" in note
    assert level_notes(leveled, 20.0) == []
    assert level_notes(leveled, 1.0) == []
