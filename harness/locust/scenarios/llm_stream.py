"""Stream from an LLM endpoint under locust: ``sse-harness locust --host URL``, or
``locust -f harness/locust/scenarios/llm_stream.py --host URL`` in a checkout.

Each user sends one streamed request after another, each with the next prompt, and the
web UI shows TTFT, ITL and E2E rows (request type SSE), failures named by their error
kind, and an "LLM streams" tab with live TTFT percentiles and output tokens/s. The
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
