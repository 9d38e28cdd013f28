"""What the locust user sends and how it reads the answer, from locust's parsed options.

Locust hands custom options over as typed values from the command line, but as strings
from the web UI's start form (and a cleared field as an empty string), so every value is
parsed here, once per test, into a frozen ``StreamSettings``. The options keep the
meanings they have in ``sse-harness run`` (the workload options are read by the same
code, ``harness.load.workload_options``); the API key is read from the environment
variable that ``--api-key-env`` names and appears in no repr, log or record.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.dialects import Dialect, get
from harness.errors import ConfigError
from harness.load.payloads import (
    REQUEST_KINDS,
    Message,
    RequestSpec,
    default_api_key_env,
    read_prompt_file,
)
from harness.load.workload import WorkloadInfo
from harness.load.workload_options import (
    option_number,
    option_text,
    token_rule_from_options,
    workload_from_options,
)
from harness.transports import Timeouts

__all__ = ["DEFAULT_PROMPT", "HTTP_CLIENTS", "StreamSettings"]

#: The HTTP clients the locust user can stream with: locust's FastHttpUser's
#: (geventhttpclient) and HttpUser's (requests). The first is the default, by measurement.
HTTP_CLIENTS = ("fasthttp", "requests")
DEFAULT_PROMPT: tuple[Message, ...] = ({"role": "user", "content": "Tell me a story."},)


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamSettings:
    """How every request of a locust test is built and read."""

    spec: RequestSpec
    dialect_name: str = "auto"
    pointer: str | None = None
    prompts: tuple[tuple[Message, ...], ...] = (DEFAULT_PROMPT,)
    #: the output length each prompt asks for, by the prompt's index (empty: the
    #: request's ``max_tokens``)
    prompt_max_tokens: tuple[int | None, ...] = ()
    #: what the workload options made, for the summary (``config.workload``)
    workload: WorkloadInfo | None = None
    seed: int = 0
    timeouts: Timeouts = field(default_factory=Timeouts)
    http_client: str = HTTP_CLIENTS[0]
    api_key_env: str = "OPENAI_API_KEY"

    def __post_init__(self) -> None:
        if self.http_client not in HTTP_CLIENTS:
            raise ConfigError(
                "http-client", f"must be one of {', '.join(HTTP_CLIENTS)}, not {self.http_client!r}"
            )
        if not self.prompts or any(not p for p in self.prompts):
            raise ConfigError("prompt-file", "give at least one non-empty prompt")
        if self.prompt_max_tokens and len(self.prompt_max_tokens) != len(self.prompts):
            raise ConfigError("max-tokens", "give one output length per prompt")
        for name in ("connect_s", "ttft_s", "idle_s", "total_s"):
            if not getattr(self.timeouts, name) > 0:
                raise ConfigError(name.removesuffix("_s") + "-timeout", "must be positive")

    @property
    def dialect(self) -> Dialect | None:
        """The dialect to read with; None detects it from each stream."""
        return get(self.dialect_name, pointer=self.pointer)

    def max_tokens_for(self, index: int) -> int | None:
        """The output length the prompt of ``index`` asks for (None: the request's own)."""
        if not self.prompt_max_tokens:
            return None
        return self.prompt_max_tokens[index % len(self.prompt_max_tokens)]

    @classmethod
    def from_options(
        cls, options: Any, host: str | None, *, environ: Mapping[str, str] = os.environ
    ) -> StreamSettings:
        """Parse locust's options (typed, or strings from the web UI) and the host.

        Args:
            options: locust's ``parsed_options``.
            host: the endpoint, a base URL (``http://host:port``) or a full URL.
            environ: where the API key's variable is looked up.

        Raises:
            ConfigError: a value is invalid, named as the option is spelled.
        """
        if not host:
            raise ConfigError("host", "give the endpoint with --host (base or full URL)")
        request = option_text(options, "request") or "openai-chat"
        if request not in REQUEST_KINDS:
            raise ConfigError("request", f"must be one of {', '.join(REQUEST_KINDS)}")
        key_env = option_text(options, "api_key_env") or default_api_key_env(request)
        spec = RequestSpec(
            request=request,
            url=host,
            model=option_text(options, "model") or "mock-model",
            max_tokens=option_number(options, "max_tokens", int),
            api_key=environ.get(key_env) or None,
        )
        prompt_file = option_text(options, "prompt_file")
        prompts = tuple(read_prompt_file(Path(prompt_file))) if prompt_file else (DEFAULT_PROMPT,)
        seed = option_number(options, "seed", int) or 0
        rule = token_rule_from_options(options)
        # no request bound: a pool of drawn lengths holds the workload's default size
        workload = workload_from_options(options, prompts, rule, seed=seed, requests=None)
        defaults = Timeouts()
        timeouts = Timeouts(
            connect_s=option_number(options, "connect_timeout", float) or defaults.connect_s,
            ttft_s=option_number(options, "ttft_timeout", float) or defaults.ttft_s,
            idle_s=option_number(options, "idle_timeout", float) or defaults.idle_s,
            total_s=option_number(options, "total_timeout", float) or defaults.total_s,
        )
        settings = cls(
            spec=spec,
            dialect_name=option_text(options, "dialect") or "auto",
            pointer=option_text(options, "pointer"),
            prompts=workload.prompts if workload else prompts,
            prompt_max_tokens=workload.max_tokens if workload else (),
            workload=workload.info if workload else None,
            seed=seed,
            timeouts=timeouts,
            http_client=option_text(options, "http_client") or HTTP_CLIENTS[0],
            api_key_env=key_env,
        )
        _ = settings.dialect  # an unknown dialect or a misplaced pointer fails here, not later
        return settings

    def describe(self) -> dict[str, Any]:
        """The settings as JSON-able data for ``summary.json``, with every secret left out."""
        return {
            **self.spec.redacted(),
            "api_key_env": self.api_key_env,
            "dialect": self.dialect_name,
            "pointer": self.pointer,
            "transport": f"locust-{self.http_client}",
            "prompts": len(self.prompts),
            "seed": self.seed,
            "timeouts": {
                "connect_s": self.timeouts.connect_s,
                "ttft_s": self.timeouts.ttft_s,
                "idle_s": self.timeouts.idle_s,
                "total_s": self.timeouts.total_s,
            },
            **({"workload": self.workload.describe()} if self.workload else {}),
        }
