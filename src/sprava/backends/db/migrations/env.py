"""Alembic environment: always run on the connection Sprava hands over."""

from __future__ import annotations

from alembic import context

import sprava.backends.db.account_tables
import sprava.backends.db.catalogue_tables
import sprava.backends.db.inbox_tables
import sprava.backends.db.search_tables  # noqa: F401  (registers the tables)
from sprava.backends.db.tables import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
context.run_migrations()
