"""Implementations of the storage protocols: databases and blob stores."""
