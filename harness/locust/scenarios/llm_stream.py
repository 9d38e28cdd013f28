"""Stream from an LLM endpoint under locust: ``sse-harness locust --host URL``, or
``locust -f harness/locust/scenarios/llm_stream.py --host URL`` in a checkout.

Each user sends one streamed request after another, each with the next prompt. Locust's
statistics count streams (one row, request type SSE: response time is E2E, failures are
named by their error kind), and the web UI's "LLM streams" tab has a live chart and table
of TTFT, ITL, output tokens/s and streams in flight. The
options (``--request``, ``--dialect``, ``--model``, ``--max-tokens``, ``--prompt-file``,
``--api-key-env``) are in the start form. Every test writes ``reports/<run-id>/`` like
``sse-harness run`` (also with ``--master`` and ``--worker`` processes).
"""

from locust import task

from harness.locust.user import LLMStreamUser, install

install()


class LLMStream(LLMStreamUser):
    """One streamed request after another."""

    @task
    def stream(self) -> None:
        self.stream_prompt()
