"""Benchmarks: standalone scripts run as `python -m bench.<name>`, each printing ratios against a baseline."""
