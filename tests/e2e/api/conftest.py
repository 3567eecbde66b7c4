"""Fixtures of the HTTP API tests, defined in :mod:`api_harness`.

The harness is a plain module so that test modules import its helpers by a name no other
folder's ``conftest`` shares (two ``conftest`` modules cannot both be imported by that name).
"""

from api_harness import emulators, served, sqlite_served, with_emulators

__all__ = ["emulators", "served", "sqlite_served", "with_emulators"]
