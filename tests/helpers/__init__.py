"""Shared test helpers: tiny datasets and recipes built in a test's tmp_path."""
