"""Locust's side: the streaming user and its gevent client, the settings read from locust's
options, load shapes, and the records written as a run's are.

Only ``user`` and ``client`` import locust and gevent (which patch the standard library).
"""
