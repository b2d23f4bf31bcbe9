"""Sprava's benchmarks against a peer each; run with ``make bench`` or ``python -m bench``."""
