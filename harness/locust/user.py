"""The abstract locust user that streams from LLM endpoints, and the plugin around it.

A locustfile calls ``install()`` and subclasses ``LLMStreamUser``, adding only tasks::

    from locust import task
    from harness.locust.user import LLMStreamUser, install

    install()

    class LLMStream(LLMStreamUser):
        @task
        def stream(self) -> None:
            self.stream_prompt()

``install`` adds the options (``--request``, ``--dialect``, ``--model``, ``--max-tokens``,
``--prompt-file``, ``--api-key-env``, the workload options ``--dataset``,
``--output-tokens``, ``--input-tokens``, ``--prefix-groups``, ... and ``--seed``, with
``sse-harness run``'s meanings; they show in the web UI's start form) and, once locust
has made its environment, the plugin: records flow from the users to the node's
collector (a worker ships them to the master in batches), every test writes
``reports/<run-id>/`` like ``sse-harness run``, and the web UI gains an "LLM streams"
tab: a live chart (TTFT and ITL percentiles, output tokens/s, streams in flight and
users over the whole test) above a table of the last 10 s and the whole test. The chart
is drawn by uPlot, served from the package (the UI works offline).

This module imports locust, which patches the standard library with gevent: only locust
processes may import it (the rest of the harness never does).
"""

from __future__ import annotations

import itertools
import json
import logging
import time
from pathlib import Path
from typing import Any

import gevent
import locust
from locust import User
from locust.exception import StopUser
from locust.runners import (
    STATE_INIT,
    STATE_RUNNING,
    STATE_SPAWNING,
    STATE_STOPPED,
    MasterRunner,
    WorkerRunner,
)

from harness.dialects import DIALECT_NAMES
from harness.errors import ConfigError
from harness.load.payloads import REQUEST_KINDS, Message
from harness.load.workload_options import add_workload_arguments
from harness.locust.client import REQUEST_TYPE, SSEClient
from harness.locust.live import LiveBoard
from harness.locust.records import (
    DONE_MESSAGE,
    FLUSH_MESSAGE,
    RECORDS_MESSAGE,
    ClockBase,
    RecordCollector,
    decode_batch,
    encode_batch,
)
from harness.locust.settings import HTTP_CLIENTS, StreamSettings
from harness.record import RequestRecord
from harness.run import default_out_dir

__all__ = ["REQUEST_TYPE", "LLMStreamUser", "Plugin", "add_arguments", "install", "plugin_of"]

log = logging.getLogger(__name__)

#: A worker ships its records at least this often, or once this many are waiting.
FLUSH_INTERVAL_S = 1.0
FLUSH_RECORDS = 500
#: The master waits this long, beyond locust's --stop-timeout, for the workers' last records.
DONE_GRACE_S = 30.0
TAB_KEY = "sse-harness"
#: The web UI's files (the chart's script, uPlot and its licence), served under /sse-harness/.
WEBUI_DIR = Path(__file__).with_name("webui")


def add_arguments(parser: Any) -> None:
    """Add the user's options to locust's parser (``init_command_line_parser``)."""
    group = parser  # locust's own add_argument takes include_in_web_ui; a group's does not
    group.add_argument(
        "--request",
        choices=REQUEST_KINDS,
        default="openai-chat",
        help="the body to send (default openai-chat)",
    )
    group.add_argument(
        "--dialect",
        choices=("auto", *DIALECT_NAMES),
        default="auto",
        help="how to read the answer (default: detected)",
    )
    group.add_argument("--model", default="mock-model", help="the model to ask for")
    group.add_argument("--max-tokens", help="output length to ask for")
    group.add_argument("--prompt-file", help="JSONL of prompts or message lists")
    group.add_argument(
        "--api-key-env",
        help="variable holding the API key (default "
        "OPENAI_API_KEY, or ANTHROPIC_API_KEY for anthropic)",
    )
    hidden = {"include_in_web_ui": False}
    # paths stay strings: the master sends the options to its workers with msgpack
    add_workload_arguments(group, rare=hidden, path=str)
    group.add_argument("--seed", help="seed of the drawn lengths and samples (default 0)")
    group.add_argument("--pointer", help="generic dialect: JSON pointer to the text", **hidden)
    group.add_argument("--connect-timeout", help="seconds (default 10)", **hidden)
    group.add_argument("--ttft-timeout", help="seconds (default 60)", **hidden)
    group.add_argument("--idle-timeout", help="seconds between reads (default 60)", **hidden)
    group.add_argument("--total-timeout", help="seconds (default 600)", **hidden)
    group.add_argument(
        "--http-client",
        choices=HTTP_CLIENTS,
        default=HTTP_CLIENTS[0],
        help="fasthttp (geventhttpclient) or requests",
        **hidden,
    )
    group.add_argument(
        "--out",
        help="run folder (default reports/<time>-<id>/); later tests "
        "of the same session add -2, -3",
        **hidden,
    )


def install(events: Any = None) -> None:
    """Register the options and the plugin with locust's events (once per process)."""
    events = events or locust.events
    if getattr(events, "sse_harness_installed", False):
        return
    events.sse_harness_installed = True
    events.init_command_line_parser.add_listener(add_arguments)

    @events.init.add_listener
    def _init(environment: Any, **_: Any) -> None:
        environment.sse_harness = Plugin(environment)


def plugin_of(environment: Any) -> Plugin:
    """The plugin of a locust environment.

    Raises:
        ConfigError: ``install()`` was not called in the locustfile.
    """
    plugin = getattr(environment, "sse_harness", None)
    if plugin is None:
        raise ConfigError("locustfile", "call harness.locust.user.install() in the locustfile")
    return plugin


class LLMStreamUser(User):
    """A user that streams one request after another; concrete users only add tasks."""

    abstract = True

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        self.plugin = plugin_of(environment)
        self.number = next(self.plugin.user_numbers)
        self.sent = 0
        self.client: SSEClient | None = None

    def on_start(self) -> None:
        settings = self.plugin.settings
        if settings is None:
            raise StopUser()  # the options were invalid; the plugin said why
        events = self.environment.events
        self.client = SSEClient(
            settings,
            request_event=events.request,
            sink=self.plugin.deliver,
            on_token=self.plugin.count_token,
        )

    def on_stop(self) -> None:
        if self.client is not None:
            self.client.close()

    def next_prompt(self) -> tuple[tuple[Message, ...], int | None]:
        """The node's next prompt and the output length it asks for (None: the
        ``--max-tokens`` of the test): the users of one node take the workload's prompts
        in turn, so each dataset prompt is sent once before any is sent again."""
        settings = self.plugin.settings
        if settings is None:
            raise StopUser()
        index = next(self.plugin.prompt_numbers)
        return settings.prompts[index % len(settings.prompts)], settings.max_tokens_for(index)

    def stream_prompt(
        self, messages: tuple[Message, ...] | None = None, *, max_tokens: int | None = None
    ) -> RequestRecord:
        """Stream one request: the next prompt with its output length, unless
        ``messages`` (asking for ``max_tokens``) are given."""
        if self.client is None:
            raise StopUser()
        if not messages:
            messages, max_tokens = self.next_prompt()
        request_id = f"{self.plugin.node}-{self.number}-{self.sent}"
        self.sent += 1
        self.plugin.in_flight += 1
        try:
            return self.client.stream(
                messages, request_id=request_id, user=self.number, max_tokens=max_tokens
            )
        finally:
            self.plugin.in_flight -= 1


class Plugin:
    """Per locust process: settings, record flow, live figures and the web UI tab."""

    def __init__(self, environment: Any) -> None:
        self.env = environment
        self.runner = environment.runner
        self.is_worker = isinstance(self.runner, WorkerRunner)
        self.is_master = isinstance(self.runner, MasterRunner)
        self.node = self.runner.client_id.rsplit("_", 1)[-1][:8] if self.is_worker else "local"
        self.clock_base = ClockBase.here()
        self.user_numbers = itertools.count()
        self.prompt_numbers = itertools.count()  # the workload's next prompt, this test
        self.settings: StreamSettings | None = None
        self.board = LiveBoard()
        self.collector: RecordCollector | None = None
        self.tests = 0
        self._buffer: list[RequestRecord] = []
        self._tokens = 0
        self.in_flight = 0  # this node's streams
        self._workers_in_flight: dict[str, int] = {}  # master: each worker's, as last reported
        self._cpu_start_s = 0.0
        events = environment.events
        events.test_start.add_listener(self._test_start)
        events.test_stop.add_listener(self._test_stop)
        events.reset_stats.add_listener(self._reset_stats)
        if self.is_worker:
            events.report_to_master.add_listener(self._report_to_master)
            self.runner.register_message(FLUSH_MESSAGE, self._flush_asked, concurrent=True)
            gevent.spawn(self._ship_periodically)
        else:
            gevent.spawn(self._sample_periodically)
        if self.is_master:
            events.worker_report.add_listener(self._worker_report)
            self.runner.register_message(RECORDS_MESSAGE, self._records_arrived)
            self.runner.register_message(DONE_MESSAGE, self._node_done)
        if environment.web_ui is not None:
            _extend_web_ui(environment.web_ui, self)

    # -- every node ------------------------------------------------------------------

    def _test_start(self, environment: Any, **_: Any) -> None:
        try:
            self.settings = StreamSettings.from_options(
                environment.parsed_options, environment.host
            )
        except ConfigError as exc:
            self.settings = None
            log.error("sse-harness: %s; the test will not send requests", exc)
            environment.process_exit_code = 2
            if not self.is_worker:
                gevent.spawn(self.runner.quit if _headless(environment) else self.runner.stop)
            return
        self._cpu_start_s = time.process_time()
        self.prompt_numbers = itertools.count()
        if not self.is_worker:
            self.tests += 1
            self.board = LiveBoard()
            self.collector = RecordCollector(self._out_dir(), board=self.board)
            if self.is_master:
                self.collector.expected.update(c.id for c in self.runner.clients.all)
            log.info("sse-harness: writing records to %s", self.collector.out_dir)

    def _test_stop(self, environment: Any, **_: Any) -> None:
        cpu_s = time.process_time() - self._cpu_start_s
        if self.is_worker:
            self._ship()
            self.runner.send_message(DONE_MESSAGE, {"cpu_s": cpu_s})
            return
        collector = self.collector
        if collector is None or collector.finished or self.settings is None:
            return
        if self.is_master:
            self._collect_from_workers(collector)
        else:
            collector.node_done("local", {"cpu_s": cpu_s})
        result = collector.finish(self._describe(), self._locust_view())
        missing = result.summary["locust"]["missing_nodes"]
        log.info(
            "sse-harness: wrote %s (%d records%s)",
            collector.out_dir,
            len(result.records),
            f"; no last records from {', '.join(missing)}" if missing else "",
        )

    def _reset_stats(self, **_: Any) -> None:
        """The web UI's "reset stats" starts the live figures afresh (not the report)."""
        self.board = LiveBoard()
        if self.collector is not None:
            self.collector.board = self.board

    def deliver(self, record: RequestRecord) -> None:
        """A user finished a request: ship it (worker) or collect it."""
        if self.is_worker:
            self._buffer.append(record)
            if len(self._buffer) >= FLUSH_RECORDS:
                self._ship()
        elif self.collector is not None:
            self.collector.add([record])

    def count_token(self) -> None:
        if self.is_worker:
            self._tokens += 1
        else:
            self.board.add_tokens(1)

    # -- worker ----------------------------------------------------------------------

    def _ship(self) -> None:
        if self._buffer:
            batch, self._buffer = self._buffer, []
            self.runner.send_message(
                RECORDS_MESSAGE, encode_batch(batch, self.clock_base, self.node)
            )

    def _ship_periodically(self) -> None:
        while True:
            gevent.sleep(FLUSH_INTERVAL_S)
            self._ship()

    def _report_to_master(self, data: dict[str, Any], **_: Any) -> None:
        data["sse_harness_tokens"], self._tokens = self._tokens, 0
        data["sse_harness_in_flight"] = self.in_flight

    def _flush_asked(self, environment: Any, msg: Any, **_: Any) -> None:
        """The master wants the last records: stop the users (their streams may end within
        --stop-timeout), which fires test_stop here, which ships and says done."""
        if self.runner.state not in (STATE_STOPPED, STATE_INIT):
            self.runner.stop()
        else:
            self._ship()
            self.runner.send_message(DONE_MESSAGE, {"cpu_s": 0.0, "again": True})

    # -- master ----------------------------------------------------------------------

    def _records_arrived(self, environment: Any, msg: Any, **_: Any) -> None:
        if self.collector is None:
            return
        try:
            records = decode_batch(msg.data, self.clock_base)
        except (KeyError, ValueError) as exc:
            log.error("sse-harness: a batch from %s was unreadable: %s", msg.node_id, exc)
            return
        self.collector.add(records, node=msg.node_id)

    def _node_done(self, environment: Any, msg: Any, **_: Any) -> None:
        collector = self.collector
        if collector is None or collector.finished:
            return
        if msg.node_id not in collector.done or not msg.data.get("again"):
            collector.node_done(msg.node_id, msg.data)

    def _worker_report(self, client_id: str, data: dict[str, Any], **_: Any) -> None:
        self.board.add_tokens(int(data.get("sse_harness_tokens", 0)))
        self._workers_in_flight[client_id] = int(data.get("sse_harness_in_flight", 0))

    def _collect_from_workers(self, collector: RecordCollector) -> None:
        """Ask the workers still running for their last records and wait for them."""
        for client in list(self.runner.clients.all):
            if client.id in collector.waiting_for():
                self.runner.send_message(FLUSH_MESSAGE, None, client_id=client.id)
        deadline = time.monotonic() + (self.env.stop_timeout or 0) + DONE_GRACE_S
        while collector.waiting_for() and time.monotonic() < deadline:
            gevent.sleep(0.1)

    # -- master or single process ----------------------------------------------------

    def _sample_periodically(self) -> None:
        """A point of the live history every second while a test runs."""
        while True:
            gevent.sleep(1.0)
            if self.runner.state in (STATE_RUNNING, STATE_SPAWNING):
                self.board.sample(in_flight=self.streams_in_flight(), users=self.runner.user_count)

    def streams_in_flight(self) -> int:
        """Streams open now (on the master: as the workers last reported, every 3 s)."""
        if self.is_master:
            connected = {c.id for c in self.runner.clients.all}
            return sum(n for w, n in self._workers_in_flight.items() if w in connected)
        return self.in_flight

    def live(self) -> dict[str, Any]:
        """The body of ``/sse-harness/live``: the board's figures, history and sources."""
        collector = self.collector
        return {
            **self.board.as_json(),
            "in_flight": self.streams_in_flight(),
            "users": self.runner.user_count,
            "records_written": collector.count if collector else 0,
            "run_folder_written": bool(collector and collector.finished),
            "nodes": sorted(collector.expected) if collector and self.is_master else [self.node],
            "out_dir": str(collector.out_dir) if collector else None,
        }

    def _out_dir(self) -> Path:
        given = getattr(self.env.parsed_options, "out", None)
        if not given:
            return default_out_dir()
        return Path(given) if self.tests == 1 else Path(f"{given}-{self.tests}")

    def _describe(self) -> dict[str, Any]:
        assert self.settings is not None
        options = self.env.parsed_options
        config = self.settings.describe()
        config["profile"] = {
            "kind": "locust",
            "users": getattr(options, "num_users", None),
            "spawn_rate": getattr(options, "spawn_rate", None),
            "run_time_s": getattr(options, "run_time", None),
            "shape": type(self.env.shape_class).__name__ if self.env.shape_class else None,
        }
        return config

    def _locust_view(self) -> dict[str, Any]:
        return {
            "workers": len(self.runner.clients) if self.is_master else 0,
            "stop_timeout_s": self.env.stop_timeout,
        }


def _headless(environment: Any) -> bool:
    return bool(getattr(environment.parsed_options, "headless", False))


def _extend_web_ui(web_ui: Any, plugin: Plugin) -> None:
    """The "LLM streams" tab, its chart, and the routes under ``/sse-harness/``.

    Locust's web UI takes extra tabs whose tables come with ``/stats/requests``
    (``extended_tabs``, ``extended_tables``, ``extended_stats``). A tab holds a table only,
    so the page gets one more script (``webui/live.js``): it draws the chart from
    ``/sse-harness/live`` above the tab's table while the tab is open. ``/sse-harness/``
    shows the chart alone.
    """
    from flask import Response, request, send_from_directory

    web_ui.template_args["extended_tabs"] = [{"title": "LLM streams", "key": TAB_KEY}]
    web_ui.template_args["extended_tables"] = [
        {
            "key": TAB_KEY,
            "structure": [
                {"key": "name", "title": "Figure"},
                {"key": "now", "title": "Last 10 s"},
                {"key": "run", "title": "Whole test"},
            ],
        }
    ]

    @web_ui.app.after_request
    def _extend(response: Response) -> Response:
        path = request.path.rstrip("/")
        if path.endswith("/stats/requests") and response.is_json:
            data = response.get_json()
            data["extended_stats"] = [{"key": TAB_KEY, "data": plugin.board.rows()}]
            response.set_data(json.dumps(data))
        elif path == "" and response.mimetype == "text/html" and not response.direct_passthrough:
            page = response.get_data(as_text=True)
            response.set_data(page.replace("</body>", f"{CHART_TAGS}</body>", 1))
        return response

    @web_ui.app.route("/sse-harness/live")
    def _live() -> Response:
        return Response(json.dumps(plugin.live()), mimetype="application/json")

    @web_ui.app.route("/sse-harness/")
    def _chart_page() -> Response:
        return Response(CHART_PAGE, mimetype="text/html")

    @web_ui.app.route("/sse-harness/<name>")
    def _webui_file(name: str) -> Response:
        return send_from_directory(WEBUI_DIR, name, max_age=3600)


#: What the web UI's page gets before ``</body>``: uPlot and the chart's script.
CHART_TAGS = (
    '<link rel="stylesheet" href="sse-harness/uPlot.min.css">'
    '<script src="sse-harness/uPlot.iife.min.js"></script>'
    '<script src="sse-harness/live.js"></script>'
)
CHART_PAGE = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>sse-harness: LLM streams</title>
{CHART_TAGS.replace('"sse-harness/', '"')}</head>
<body><div id="sse-harness-live" data-standalone="1"></div></body></html>
"""
