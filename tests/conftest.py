"""Fixtures for the tests in this directory.

Database and secret fixtures (``database_url``, ``sqlite_url``, ``postgres_url``, ``db``,
``secret_box``) live in the root ``conftest.py`` so that plugin test directories share them.
"""
