"""Configuration: bad values raise ConfigError naming the field; TOML and flags; exit code 2."""

from __future__ import annotations

import argparse
import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from harness.errors import ConfigError
from mock_server.cli import add_arguments, config_from_args
from mock_server.config import FaultRates, MockConfig, TimingProfile

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("kind", "changes", "field"),
    [
        (TimingProfile, {"ttft_ms": -1}, "ttft_ms"),
        (TimingProfile, {"itl_ms": float("nan")}, "itl_ms"),
        (TimingProfile, {"distribution": "pareto"}, "distribution"),
        (TimingProfile, {"distribution": "uniform", "spread": 1.5}, "spread"),
        (TimingProfile, {"tokens": 2.5}, "tokens"),
        (TimingProfile, {"tokens_per_event": 0}, "tokens_per_event"),
        (TimingProfile, {"capacity": 0}, "capacity"),
        (FaultRates, {"http_503": 1.5}, "http_503"),
        (FaultRates, {"stall": True}, "stall"),
        (MockConfig, {"port": 70000}, "port"),
        (MockConfig, {"workers": 0}, "workers"),
        (MockConfig, {"host": " "}, "host"),
        (MockConfig, {"max_concurrency": 0}, "max_concurrency"),
        (MockConfig, {"truth_capacity": 0}, "truth_capacity"),
        (MockConfig, {"models": ()}, "models"),
        (MockConfig, {"cors_origin": "a\nb"}, "cors_origin"),
        (MockConfig, {"control_cors_origin": ""}, "control_cors_origin"),
        (MockConfig, {"cors_origin": "http://\udcff.test"}, "cors_origin"),
        (MockConfig, {"models": ("m\ud800",)}, "models"),
        (MockConfig, {"keepalive_timeout_s": 0}, "keepalive_timeout_s"),
        (MockConfig, {"max_choices": 0}, "max_choices"),
        (MockConfig, {"body_timeout_s": float("inf")}, "body_timeout_s"),
        (MockConfig, {"ping_interval_ms": 0.5}, "ping_interval_ms"),
    ],
)
def test_bad_values_raise_config_error_naming_the_field(kind, changes, field) -> None:
    with pytest.raises(ConfigError) as caught:
        kind(**changes)
    assert caught.value.field == field


def test_configs_are_frozen_slotted_and_keyword_only() -> None:
    config = MockConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.port = 1  # type: ignore[misc]
    assert not hasattr(config, "__dict__")
    with pytest.raises(TypeError):
        TimingProfile(5.0)  # type: ignore[misc]
    assert config.host == "127.0.0.1"  # loopback by default


def test_from_mapping_reads_nested_tables_and_names_unknown_keys() -> None:
    config = MockConfig.from_mapping(
        {"port": 0, "models": ["a", "b"], "timing": {"itl_ms": 7}, "faults": {"cr": 0.5}}
    )
    assert config.models == ("a", "b")
    assert config.timing.itl_ms == 7
    assert config.faults.cr == 0.5
    with pytest.raises(ConfigError) as unknown:
        MockConfig.from_mapping({"timing": {"itl": 7}})
    assert unknown.value.field == "timing.itl"
    with pytest.raises(ConfigError) as bad:
        MockConfig.from_mapping({"timing": {"itl_ms": -7}})
    assert bad.value.field == "timing.itl_ms"


def test_from_toml_reads_a_file_and_reports_bad_toml(tmp_path: Path) -> None:
    good = tmp_path / "mock.toml"
    good.write_text('seed = 3\n[timing]\nttft_ms = 50\ndistribution = "lognormal"\nspread = 0.3\n')
    config = MockConfig.from_toml(good)
    assert (config.seed, config.timing.ttft_ms, config.timing.distribution) == (3, 50, "lognormal")
    broken = tmp_path / "broken.toml"
    broken.write_text("seed = \n")
    with pytest.raises(ConfigError, match="not valid TOML") as caught:
        MockConfig.from_toml(broken)
    assert caught.value.field == "config"
    with pytest.raises(ConfigError, match="cannot read"):
        MockConfig.from_toml(tmp_path / "missing.toml")


def parse(*argv: str) -> MockConfig:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return config_from_args(parser.parse_args(argv))


def test_flags_override_the_toml_file(tmp_path: Path) -> None:
    file = tmp_path / "mock.toml"
    file.write_text("port = 9000\nseed = 1\n[timing]\nitl_ms = 50\ntokens = 3\n")
    config = parse("--config", str(file), "--itl-ms", "5", "--fault-rate", "http_503=0.1")
    assert config.port == 9000  # from the file
    assert config.seed == 1
    assert config.timing.itl_ms == 5  # the flag wins
    assert config.timing.tokens == 3
    assert config.faults.http_503 == 0.1


def test_the_cors_flags_reach_the_config() -> None:
    assert parse().control_cors_origin is None  # other origins cannot read the ground truth
    config = parse("--cors-origin", "http://app.test", "--control-cors-origin", "http://d.test")
    assert (config.cors_origin, config.control_cors_origin) == ("http://app.test", "http://d.test")


def test_the_connection_timeouts_are_bounded_by_default_and_set_by_flags() -> None:
    default = parse()
    assert (default.keepalive_timeout_s, default.body_timeout_s) == (30.0, 30.0)
    config = parse("--keepalive-timeout-s", "5", "--body-timeout-s", "2.5")
    assert (config.keepalive_timeout_s, config.body_timeout_s) == (5.0, 2.5)


def test_a_bad_fault_rate_flag_names_the_kind() -> None:
    with pytest.raises(ConfigError) as caught:
        parse("--fault-rate", "http_503=2")
    assert caught.value.field == "http_503"
    with pytest.raises(ConfigError) as unknown:
        parse("--fault-rate", "explode=0.1")
    assert unknown.value.field == "fault-rate"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--itl-ms", "-5"], "error: itl_ms: must be between"),
        (["--workers", "0"], "error: workers:"),
        (["--distribution", "uniform", "--spread", "3"], "error: spread:"),
    ],
)
def test_the_cli_exits_2_with_a_clear_message_on_bad_configuration(argv, message) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mock_server", *argv],
        capture_output=True, text=True, cwd=ROOT, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert message in result.stderr
    assert result.stdout == ""


def test_the_cli_help_lists_every_option() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mock_server", "--help"],
        capture_output=True, text=True, cwd=ROOT, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0
    for flag in ("--ttft-ms", "--itl-ms", "--tokens", "--seed", "--workers", "--config"):
        assert flag in result.stdout
    for flag in ("--fault-rate", "--cors-origin", "--max-concurrency", "--reasoning-tokens"):
        assert flag in result.stdout
