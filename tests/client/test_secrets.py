"""What counts as a secret of a request: one rule for run, check and locust."""

from __future__ import annotations

from harness.load.payloads import RequestSpec
from harness.load.recorder import redact


def spec(*headers: tuple[str, str], api_key: str | None = None) -> RequestSpec:
    return RequestSpec(url="http://127.0.0.1:1/", headers=headers, api_key=api_key)


def test_credentials_are_secrets_whatever_their_length_and_the_token_after_a_scheme() -> None:
    secrets = spec(
        ("Authorization", "Bearer sk-abc123"),
        ("X-Api-Token", "t0k3"),
        ("Cookie", "session=42abc"),
        api_key="sk-key-9",
    ).secrets
    assert set(secrets) == {"sk-key-9", "Bearer sk-abc123", "sk-abc123", "t0k3", "session=42abc"}


def test_a_long_opaque_value_of_any_header_is_a_secret_and_a_short_plain_one_is_not() -> None:
    secrets = spec(
        ("X-Mock-Fault", "cr"),
        ("anthropic-version", "2023-06-01"),
        ("X-Custom", "a1b2c3d4e5f6g7h8i9"),
    ).secrets
    assert secrets == ("a1b2c3d4e5f6g7h8i9",)
    # a fault named "cr" no longer mangles every text that contains those two letters
    assert redact('"created_at": 1', secrets) == '"created_at": 1'
