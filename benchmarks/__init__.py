"""Benchmarks of genesys-export against the official SDK and the rate-limit ceiling (issue 6)."""
