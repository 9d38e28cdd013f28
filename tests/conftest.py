"""Shared test set-up: Hypothesis profiles.

The default profile keeps CI fast; ``pytest --hypothesis-profile=thorough`` runs many
more examples of every property.
"""

from hypothesis import HealthCheck, settings

settings.register_profile(
    "fast", max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "thorough", max_examples=5000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("fast")
