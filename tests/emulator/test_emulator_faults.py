"""Fault sets: validation, JSON round trip, and the --fault flag syntax."""

from __future__ import annotations

import pytest

from emulator.errors import ConfigError
from emulator.faults import Faults, faults_from_flags, parse_fault_flag


def test_default_is_healthy_and_round_trips():
    """The default fault set is healthy and survives to_dict/from_dict."""
    faults = Faults(status=503, fail_rate=0.5, fail_after_tokens=3, stall=True)
    assert Faults().healthy and not faults.healthy
    assert Faults.from_dict(faults.to_dict()) == faults


@pytest.mark.parametrize(("data", "field"), [({"status": 200}, "status"), ({"fail_rate": 2}, "fail_rate"),
                                             ({"dead": "yes"}, "dead"), ({"bogus": 1}, "faults"),
                                             ({"revive_after_s": 0}, "revive_after_s"), ({"xid": -1}, "xid")])
def test_invalid_faults_name_the_field(data, field):
    """Bad values and unknown keys raise ConfigError naming the field."""
    with pytest.raises(ConfigError) as info:
        Faults.from_dict(data)
    assert info.value.field_name == field


def test_fail_rate_draws():
    """A request fails exactly when its draw is below fail_rate."""
    faults = Faults(fail_rate=0.25)
    assert faults.fails(0.1) and not faults.fails(0.25)


def test_flags_build_one_fault_set_per_engine():
    """Repeated --fault flags accumulate per engine index."""
    sets = faults_from_flags(["1:dead", "0:status=503", "1:revive_after_s=2.5", "2:xid=79"], engines=3)
    assert sets == [Faults(status=503), Faults(dead=True, revive_after_s=2.5), Faults(xid=79)]


@pytest.mark.parametrize("flag", ["dead", "5:dead", "0:explode", "0:status", "0:status=abc", "x:dead"])
def test_bad_flags_are_rejected_with_the_flag_named(flag):
    """Malformed --fault values raise ConfigError mentioning --fault and the text."""
    with pytest.raises(ConfigError, match="--fault") as info:
        parse_fault_flag(flag, engines=2)
    assert flag in str(info.value)


def test_kv_event_faults_parse_and_validate():
    """The KV-event faults come as flags and JSON; bad values name the field and what is allowed."""
    sets = faults_from_flags(["0:kv_drop_rate=0.5", "0:kv_delay_s=2", "1:kv_clear=restart",
                              "1:kv_reorder_rate=1"], engines=2)
    assert sets == [Faults(kv_drop_rate=0.5, kv_delay_s=2.0), Faults(kv_clear="restart", kv_reorder_rate=1.0)]
    for data, message in [({"kv_clear": "wipe"}, "reset, restart"), ({"kv_drop_rate": 1.5}, "0..1"),
                          ({"kv_delay_s": -1}, "0..3600"), ({"kv_reorder_rate": True}, "0..1")]:
        with pytest.raises(ConfigError, match=message) as info:
            Faults.from_dict(data)
        assert info.value.field_name == next(iter(data))
