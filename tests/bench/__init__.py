"""Benchmarks: measured numbers, not pass/fail tests (files are named bench_*.py so pytest skips them)."""
