"""Versioned PostgreSQL migrations, applied in order by ``indexer.pg.migrate``."""
