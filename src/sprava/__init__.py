"""Sprava: an evidence vault whose custody record anyone can verify offline."""

__version__ = "0.1.0"
