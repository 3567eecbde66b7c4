"""Emulation for tests and demos: loopback server, OAuth server, clocks, faults and limits.

Never imported at run time: the engine, API and CLI work without it.
"""
