"""Tests, by level: ``unit/`` (pure, no database or network; fakes where a service needs
storage), ``integration/`` (SQLite and PostgreSQL, emulators over loopback HTTP) and ``e2e/``
(the CLI, the demo, installs and packaging). Each level has its own ``conftest.py``.

Database and secret fixtures (``database_url``, ``sqlite_url``, ``postgres_url``, ``db``,
``secret_box``) live in the root ``conftest.py``; shared helpers and sample documents in
``support.py``; the ``fakebooks`` test destination in ``fakebooks_plugin.py``.
"""

from __future__ import annotations
