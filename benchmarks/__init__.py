"""Benchmarks, run on demand (`make benchmark`), never as timed tests."""
