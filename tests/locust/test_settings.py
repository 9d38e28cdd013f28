"""The locust user's options: typed from the command line, strings from the web UI."""

from __future__ import annotations

from argparse import Namespace
from pathlib import Path

import pytest

from harness.errors import ConfigError
from harness.locust.settings import DEFAULT_PROMPT, StreamSettings

HOST = "http://127.0.0.1:8000"


def options(**values: object) -> Namespace:
    base = {"request": "openai-chat", "dialect": "auto", "model": "m", "max_tokens": None,
            "prompt_file": None, "api_key_env": None, "http_client": "fasthttp"}  # fmt: skip
    return Namespace(**{**base, **values})


def test_web_ui_strings_are_parsed_like_command_line_values() -> None:
    settings = StreamSettings.from_options(options(max_tokens="64", ttft_timeout="2.5"), HOST)
    assert settings.spec.max_tokens == 64
    assert settings.timeouts.ttft_s == 2.5
    assert StreamSettings.from_options(options(max_tokens=""), HOST).spec.max_tokens is None
    assert settings.spec.full_url == HOST + "/v1/chat/completions"
    assert settings.prompts == (DEFAULT_PROMPT,)


@pytest.mark.parametrize(
    ("values", "host", "field"),
    [
        ({"max_tokens": "lots"}, HOST, "max-tokens"),
        ({"max_tokens": "0"}, HOST, "max-tokens"),
        ({"dialect": "klingon"}, HOST, "dialect"),
        ({"request": "soap"}, HOST, "request"),
        ({"http_client": "curl"}, HOST, "http-client"),
        ({}, "", "host"),
    ],
)
def test_bad_values_name_their_option(values: dict[str, str], host: str, field: str) -> None:
    with pytest.raises(ConfigError) as error:
        StreamSettings.from_options(options(**values), host)
    assert error.value.field == field


def test_the_api_key_comes_from_the_named_variable_and_is_never_shown() -> None:
    environ = {"MY_KEY": "sk-secret-123"}
    settings = StreamSettings.from_options(options(api_key_env="MY_KEY"), HOST, environ=environ)
    assert settings.spec.api_key == "sk-secret-123"
    assert "sk-secret" not in repr(settings)
    described = settings.describe()
    assert described["api_key"] == "[redacted]"
    assert "sk-secret" not in str(described)
    anthropic = StreamSettings.from_options(
        options(request="anthropic"), HOST, environ={"ANTHROPIC_API_KEY": "a"}
    )
    assert anthropic.api_key_env == "ANTHROPIC_API_KEY"
    assert anthropic.spec.api_key == "a"


def test_prompts_come_from_the_prompt_file(tmp_path: Path) -> None:
    path = tmp_path / "prompts.jsonl"
    path.write_text('"one"\n{"prompt": "two"}\n[{"role": "user", "content": "three"}]\n')
    settings = StreamSettings.from_options(options(prompt_file=str(path)), HOST)
    assert [p[-1]["content"] for p in settings.prompts] == ["one", "two", "three"]
