"""Alembic migrations of the service database; applied by `service.db.migrate.upgrade_to_head`."""
