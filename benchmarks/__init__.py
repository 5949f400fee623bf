"""Benchmarks: ``make bench`` or ``python -m benchmarks``. Never run as tests."""
