"""Fixtures for unit tests: none need a database, a server or the network.

Builders of domain objects are in ``builders.py``; an in-memory unit of work in ``fakes.py``.
"""
