"""The locustfiles ``sse-harness locust`` runs, shipped with the package: ``llm_stream.py``
(one streamed request after another) and ``shapes.py`` (load shapes for ``--shape``).

They are locust's to load (``locust -f``), not modules to import.
"""
