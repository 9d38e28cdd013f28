"""The servers a run talks to besides the endpoint: the embedded mock and its ground truth,
and the server's own gauges, sampled while the load runs."""
