"""Integrations with other software, each behind its own extra (``billbridge[celery]``).

The core never imports these modules: each imports its third-party package at the top and is
imported only by the application that uses it.
"""
