"""OTLP receiver for AI coding agents, writing to ClickHouse."""
