"""Renderers: every function returns a string; only the CLI prints or writes."""
