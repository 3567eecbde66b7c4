"""The API's resources, one module per group; each declares its endpoints in ``ROUTES``."""
