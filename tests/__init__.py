"""Test suite of nerqueue: importable as the package `tests` from any working directory."""
