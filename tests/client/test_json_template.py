"""``--request json`` templates: ``{prompt}`` and ``{max_tokens}`` filled in, a template that
cannot make JSON refused before any request, and a request that cannot be built stopping
the run with its error instead of leaving a record that was never sent."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import harness.load.runner as runner_module
from harness.errors import ConfigError
from harness.load.payloads import RequestSpec, build_request, fill_template
from harness.load.schedule import Bounds, ClosedLoop
from tests.client.scripted import ScriptedTransport
from tests.client.test_schedule_books import STREAM, config_for, run

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = '{"q": "{prompt}", "max_tokens": {max_tokens}, "stream": true}'


def test_the_prompt_is_escaped_and_the_length_filled_in() -> None:
    filled = json.loads(fill_template(TEMPLATE, 'say "hi"\nthen stop', 12))
    assert filled == {"q": 'say "hi"\nthen stop', "max_tokens": 12, "stream": True}
    assert json.loads(fill_template(TEMPLATE, "x", None))["max_tokens"] is None


def test_a_request_asks_for_the_runs_or_its_own_output_length() -> None:
    spec = RequestSpec(request="json", url="http://h/gen", body_json=TEMPLATE, max_tokens=7)
    body = build_request(spec, [{"role": "user", "content": "hello"}]).body
    assert json.loads(body or b"")["max_tokens"] == 7
    own = build_request(spec, [{"role": "user", "content": "hi"}], max_tokens=3).body
    assert json.loads(own or b"")["max_tokens"] == 3  # a trace line's or a dataset's


def test_a_get_url_takes_both_placeholders() -> None:
    spec = RequestSpec(url="http://h/stream?q={prompt}&n={max_tokens}", method="GET", max_tokens=5)
    assert (
        build_request(spec, [{"role": "user", "content": "a b"}]).url
        == "http://h/stream?q=a%20b&n=5"
    )


@pytest.mark.parametrize(
    "template", ['{"q": {prompt}}', '{"q": "{prompt}", "n": "{max_tokens}"', "not json"]
)
def test_a_template_that_cannot_make_json_is_refused_up_front(template: str) -> None:
    with pytest.raises(ConfigError) as refused:
        RequestSpec(request="json", url="http://h/gen", body_json=template)
    assert refused.value.field == "body-json"
    assert "goes inside a string" in str(refused.value)


def test_a_request_that_cannot_be_built_stops_the_run_with_its_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    built = 0

    def failing_third(*args: object, **kwargs: object) -> object:
        nonlocal built
        built += 1
        if built == 3:
            raise ConfigError("prompt-file", "row 3 cannot be sent")
        return build_request(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(runner_module, "build_request", failing_third)
    config = config_for(profile=ClosedLoop(concurrency=1), bounds=Bounds(requests=10, grace_s=5))
    with pytest.raises(ConfigError, match="row 3 cannot be sent"):
        run(config, ScriptedTransport(body=STREAM))


@pytest.mark.slow  # two runs of sse-harness run
def test_the_run_command_fills_max_tokens_and_refuses_a_bad_template(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "harness.cli", "run", "--request", "json", "--quiet",
               "--requests", "4", "--mock-tokens", "5", "--mock-itl-ms", "1"]  # fmt: skip
    good = subprocess.run(
        [*command, "--body-json", '{"prompt": "{prompt}", "max_tokens": {max_tokens}}',
         "--max-tokens", "3", "--out", str(tmp_path / "good")],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
    )  # fmt: skip
    assert good.returncode == 0, good.stderr
    records = [json.loads(line) for line in (tmp_path / "good/results.jsonl").open()]
    assert [r["outcome"] for r in records] == ["ok"] * 4
    assert all(r["t_sent_ns"] > 0 and r["output_tokens"] == 3 for r in records)
    bad = subprocess.run(
        [*command, "--body-json", '{"prompt": {prompt}}', "--out", str(tmp_path / "bad")],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
    )  # fmt: skip
    assert bad.returncode == 2
    assert "Traceback" not in bad.stderr
    assert "body-json: not valid JSON" in bad.stderr
    assert not (tmp_path / "bad").exists()
