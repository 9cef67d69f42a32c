"""Fixtures, one module per kind of real part the tests use (see conftest.py)."""
