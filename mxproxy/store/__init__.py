"""Storage: the contract (base) and its SQLite and PostgreSQL implementations."""
