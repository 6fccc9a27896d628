"""ClickHouse schema, rollups and analyst views (chdb embedded, clickhouse-driver for a server)."""

__all__: list[str] = []
