"""A billbridge destination for Tallybook, a made-up online invoicing service with OAuth 2.0.

The worked example of an OAuth destination: the core runs the consent and keeps the tokens;
this plugin declares Tallybook's OAuth endpoints (:data:`~billbridge_tallybook.hooks.OAUTH`,
client credentials in the form body), names the Tallybook account a consent connects
(``authenticate``), lists clients and items to map to (``list_external_entities``) and turns
bills into invoices (``send_bill``). :mod:`billbridge_tallybook.fake` is a fake Tallybook for
tests and for trying it out.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
