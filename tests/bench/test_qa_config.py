"""BenchConfig validation and --qps parsing: messages name flag, value and what is allowed."""

from __future__ import annotations

import pytest

from bench.config import BenchConfig, parse_qps
from bench.errors import ConfigError


@pytest.mark.parametrize(("overrides", "message"), [
    ({"users": 0}, "--users: must be at least 1 (got 0)"),
    ({"rounds": -2}, "--rounds: must be at least 1 (got -2)"),
    ({"qps": (1.0, -0.5)}, "--qps: must be a positive number of requests/s (got -0.5)"),
    ({"qps": ()}, "--qps: must be 1 to 200 values (got ())"),
    ({"duration_s": 0.0}, "--duration: must be a positive number of seconds (got 0.0)"),
    ({"history_tokens": -1}, "--history-tokens: must be 0 or more (got -1)"),
    ({"answer_tokens": 0}, "--answer-tokens: must be at least 1 (got 0)"),
    ({"base_url": "localhost:8000"}, "--base-url: must be an http:// or https:// URL (got 'localhost:8000')"),
])
def test_bad_fields_fail_with_flag_value_and_allowed(overrides, message):
    """Each invalid field is refused with the exact flag, value and allowed range."""
    with pytest.raises(ConfigError) as info:
        BenchConfig(**overrides)
    assert str(info.value) == message


def test_qps_forms():
    """One value, a comma list and an inclusive start:stop:step range."""
    assert parse_qps("4") == (4.0,)
    assert parse_qps("0.5, 1,2") == (0.5, 1.0, 2.0)
    assert parse_qps("0.1:4.1:1") == (0.1, 1.1, 2.1, 3.1, 4.1)


@pytest.mark.parametrize("text", ["fast", "", "1:0:1", "0:1:0", "0:1000:1"])
def test_bad_qps_text_is_refused(text):
    """Non-numbers, empty lists, backwards or huge ranges fail naming --qps."""
    with pytest.raises(ConfigError, match="^--qps"):
        parse_qps(text)


def test_root_url_and_secret_free_dict():
    """A trailing /v1 is dropped from the root; the API key never reaches summary.json."""
    config = BenchConfig(base_url="http://h:1/v1/", api_key="sk-secret")
    assert config.root_url == "http://h:1"
    assert config.to_dict()["api_key"] == "***" and "sk-secret" not in str(config.to_dict())
