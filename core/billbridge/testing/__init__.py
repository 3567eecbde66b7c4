"""Testing support for billbridge and for destination plugin authors.

* :mod:`billbridge.testing.emulation.server`: serve an ASGI app (an emulator) on loopback in a
  thread.
* :mod:`billbridge.testing.emulation.clock`: clocks that can run faster than real time, or by hand.
* :mod:`billbridge.testing.emulation.limits`: rate-limit windows and in-flight caps for emulators.
* :mod:`billbridge.testing.emulation.faults`: fault injection (latency, 5xx, timeouts, lost
  responses).
* :mod:`billbridge.testing.emulation.oauth`: an OAuth 2.0 authorization server for emulators.

Nothing here is imported by the engine at run time.
"""
