"""Benchmarks of the platform on the local lab: convergence, cold start and rollout.

`benchmarks/run.py` runs them all, with the inventory benchmark, and writes the report.
"""
