"""Alembic migrations: the only way the schema is created outside tests."""
