"""Xero destination for billbridge."""
