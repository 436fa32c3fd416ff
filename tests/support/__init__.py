"""Helpers shared by the test suite; ``tests/conftest.py`` only defines fixtures, built from these."""
