"""QuickBooks Online destinations for billbridge."""
