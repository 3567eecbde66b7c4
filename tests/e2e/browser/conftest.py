"""Fixtures of the browser tests, defined in :mod:`console_harness`.

The harness is a plain module so that test modules import its helpers by a name no other
folder's ``conftest`` shares (two ``conftest`` modules cannot both be imported by that name).
"""

from console_harness import browser, empty_console, page, shots

__all__ = ["browser", "empty_console", "page", "shots"]
