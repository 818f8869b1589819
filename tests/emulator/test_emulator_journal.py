"""The request journal and the engine config: bounds, replacement, derived values."""

from __future__ import annotations

import pytest

from emulator.config import EngineConfig
from emulator.errors import ConfigError
from emulator.journal import Journal, RequestRecord


def _record(rid: str, arrival: float = 10.0) -> RequestRecord:
    return RequestRecord(request_id=rid, prompt_tokens=5, max_tokens=2, stream=True, arrival=arrival)


def test_journal_keeps_only_the_newest_records():
    """Beyond its size the journal drops the oldest records first."""
    journal = Journal(3)
    for i in range(5):
        journal.add(_record(f"r{i}"))
    assert len(journal) == 3 and journal.get("r1") is None
    assert [r.request_id for r in journal.recent(10)] == ["r2", "r3", "r4"]
    assert [r.request_id for r in journal.recent(1)] == ["r4"] and journal.recent(0) == []


def test_reused_id_replaces_the_older_record():
    """A request id seen again points at the newer request."""
    journal = Journal(3)
    journal.add(_record("same", arrival=1.0))
    journal.add(_record("same", arrival=2.0))
    assert len(journal) == 1 and journal.get("same").arrival == 2.0


def test_record_derives_ttft_and_e2e():
    """ttft_s and e2e_s are measured from arrival; absent until the event happened."""
    record = _record("r")
    assert record.to_dict()["ttft_s"] is None
    record.first_token, record.finish = 10.5, 11.0
    assert (record.ttft_s, record.e2e_s) == (0.5, 1.0)


def test_context_limit_is_bounded_by_the_gpu_cache():
    """The accepted context is the smaller of max_model_len and the GPU cache (whole blocks)."""
    assert EngineConfig(gpu_cache_tokens=1000, max_model_len=4096).context_limit == 992
    assert EngineConfig(gpu_cache_tokens=400_000).context_limit == 131_072


@pytest.mark.parametrize(("field", "value"), [("model", ""), ("gpu_cache_tokens", 8), ("max_num_seqs", 0),
                                              ("max_num_batched_tokens", 256), ("stop_after_tokens", 0)])
def test_invalid_config_names_the_field(field, value):
    """An invalid engine setting raises ConfigError naming the field."""
    with pytest.raises(ConfigError) as info:
        EngineConfig(**{field: value})
    assert info.value.field_name == field
