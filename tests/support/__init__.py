"""Helpers shared by tests/ and bench/: scratch databases, processes, polling."""
