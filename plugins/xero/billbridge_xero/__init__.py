"""Xero destination for billbridge.

* :mod:`billbridge_xero.hooks`: the hook implementations (entry point ``billbridge.destinations``).
* :mod:`billbridge_xero.translate`: bill → ``Invoices``/``CreditNotes`` element (pure).
* :mod:`billbridge_xero.send`: create, update, batches, reconciliation of duplicate numbers.
* :mod:`billbridge_xero.client`: the Accounting API over HTTP: limits, errors, lists.
* :mod:`billbridge_xero.dates`: Xero's ``/Date(ms+0000)/`` format.
* :mod:`billbridge_xero.emulator` (a package: the app, an organisation's documents and rules,
  the ``where`` language): a faithful fake of Xero for tests and demos (entry point
  ``billbridge.emulators``); none of the modules above imports it.
"""
