"""indexer/: projects the chains and the domain events into PostgreSQL and ClickHouse."""
