"""Benchmarks: whole login flows and token checks against the service, a floor and a ceiling."""
