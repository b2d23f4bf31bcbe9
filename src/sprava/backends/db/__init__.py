"""SQLAlchemy engine, tables and Alembic migrations (SQLite and PostgreSQL)."""
