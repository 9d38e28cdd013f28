"""The conformance checks, one module per area. Pure functions: no I/O, no clock.

Each module exports ``CHECKS``, a tuple of ``Check``s; ``harness.conformance.catalogue``
puts them in order. A check reads a ``harness.conformance.reading.Suite`` and returns its
findings, or ``Skip`` when the suite gives it nothing to judge.
"""
