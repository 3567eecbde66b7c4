"""Pure domain: models, money, invoice lines, the filter language, routing and preparation.

Nothing here opens a database session or makes a network call.
"""
