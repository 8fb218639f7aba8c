"""The web UI: sessions, the Claude-to-Codex tree, trace waterfalls, a live tail and the named
reports, over the same ClickHouse tables and ``sql/`` queries as the CLI. Read-only."""
