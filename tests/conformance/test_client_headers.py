"""``--client-headers``: the requests carry a real client's default headers, under the
request's own."""

from __future__ import annotations

import pytest

from harness.conformance import Target
from harness.conformance.client_headers import CLIENT_HEADERS
from harness.errors import ConfigError
from harness.load.payloads import RequestSpec, build_request

MESSAGES = [{"role": "user", "content": "hi"}]


def sent(target: Target) -> dict[str, str]:
    return dict(target.dressed(build_request(target.spec, MESSAGES)).headers)


@pytest.mark.parametrize(
    ("request_kind", "client", "agent"),
    [("openai-chat", "openai-python", "OpenAI/Python"),
     ("anthropic", "anthropic-python", "Anthropic/Python"),
     ("json", "httpx", "python-httpx")],
)  # fmt: skip
def test_by_default_a_request_carries_its_official_sdks_headers(
    request_kind: str, client: str, agent: str
) -> None:
    body = '{"prompt": "{prompt}"}' if request_kind == "json" else None
    target = Target(spec=RequestSpec(request=request_kind, url="http://127.0.0.1:1/x",
                                     body_json=body))  # fmt: skip
    assert target.client == client
    headers = sent(target)
    assert headers["accept-encoding"] == "gzip, deflate"  # as the SDK would ask
    assert headers["user-agent"] == agent
    assert headers["content-type"] == "application/json"  # the request's own stay


def test_minimal_asks_for_no_compression_and_a_header_given_by_hand_wins() -> None:
    spec = RequestSpec(url="http://127.0.0.1:1/v1/chat/completions", api_key="sk-k")
    minimal = sent(Target(spec=spec, client_headers="minimal"))
    assert minimal["accept-encoding"] == "identity"
    assert minimal["authorization"] == "Bearer sk-k"
    own = RequestSpec(url=spec.url, headers=(("Accept-Encoding", "br"),))
    assert sent(Target(spec=own, client_headers="browser"))["accept-encoding"] == "br"


def test_every_client_offers_only_codings_check_decodes() -> None:
    for headers in CLIENT_HEADERS.values():
        offered = {c.strip() for c in headers["accept-encoding"].split(",")}
        assert offered <= {"gzip", "deflate", "identity"}


def test_an_unknown_client_is_a_config_error_naming_the_option() -> None:
    with pytest.raises(ConfigError, match="client-headers: must be one of"):
        Target(spec=RequestSpec(url="http://127.0.0.1:1/"), client_headers="curl")
