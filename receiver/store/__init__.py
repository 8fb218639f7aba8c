"""Store: what knows ClickHouse: tables, DDL, the sink, credentials, the embedded server."""
