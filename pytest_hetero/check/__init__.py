"""Checking what was measured: references with tolerances, statistics, the regression gate."""
