"""The mock LLM server: deterministic SSE streams with configurable timing and faults.

Start it with ``python -m mock_server`` (``mock_server.cli``), in a background thread with
``mock_server.server.start_in_thread``, or as an application with
``mock_server.app.create_app``. ``mock_server/OVERRIDES.md`` documents the per-request
overrides and faults.
"""
