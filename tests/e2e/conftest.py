"""Fixtures for end-to-end tests: the CLI as a user runs it, installs and packaging.

Tests that install packages or start processes are marked ``slow`` (``pytest -m slow``).
"""
