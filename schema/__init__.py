"""ClickHouse DDL, numbered and applied in order by receiver.schema_apply."""
