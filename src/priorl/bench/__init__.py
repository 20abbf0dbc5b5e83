"""Benchmarks behind `priorl bench`: speed ratios measured against a baseline in the same run.

Timing targets live here, never as timed assertions in tests.
"""
