"""Timing knobs: DESIGN.md's A100 / Llama-3.1-8B calibration and the time-scale factor."""

from __future__ import annotations

import pytest

from emulator.errors import ConfigError
from emulator.timing import Timing


def test_cold_prefill_of_20k_tokens_is_about_2_5_seconds():
    """Three 8,192-token chunks of a 20k-token prompt take ~2.5 s (DESIGN.md reference)."""
    assert 2.4 <= Timing().cold_prefill_seconds(20_000, 8192) <= 2.6


def test_small_prefill_on_cached_prefix_is_30_to_60_ms():
    """200 new tokens in one step take 30-60 ms."""
    assert 0.030 <= Timing().cold_prefill_seconds(200, 8192) <= 0.060


def test_decode_step_is_12_to_15_ms_at_small_batch_and_grows():
    """One sequence with a 21k context decodes in 12-15 ms; 32 such sequences take longer."""
    timing = Timing()
    one = timing.decode_step_seconds(1, 21_000)
    assert 0.012 <= one <= 0.015
    assert timing.decode_step_seconds(32, 21_000) > timing.decode_step_seconds(8, 21_000) > one


def test_cpu_load_costs_one_second_per_200k_tokens():
    """Loading from the CPU tier runs at 200k tokens/s by default."""
    timing = Timing(step_base_s=0, step_seq_s=0)
    assert timing.step_seconds(seqs=0, prefill_tokens=0, context_tokens=0, loaded_tokens=200_000) == 1.0


def test_time_scale_multiplies_every_duration():
    """time_scale 0.1 makes every step ten times shorter, keeping the ratios."""
    slow, fast = Timing(), Timing(time_scale=0.1)
    args = {"seqs": 5, "prefill_tokens": 3000, "context_tokens": 50_000, "loaded_tokens": 4000}
    assert fast.step_seconds(**args) == pytest.approx(slow.step_seconds(**args) * 0.1)


@pytest.mark.parametrize(("field", "value"), [("time_scale", 0.0), ("prefill_token_s", -1.0),
                                              ("cpu_load_tokens_per_s", 0.0), ("step_base_s", float("nan"))])
def test_invalid_knobs_name_the_field(field, value):
    """An invalid knob raises ConfigError naming the field and the value."""
    with pytest.raises(ConfigError, match=field) as info:
        Timing(**{field: value})
    assert info.value.field_name == field
