-- Inserted parts in the compact format: min_rows_for_wide_part = 60000, more rows than the
-- receiver puts in one insert (batch.max_rows, 50,000 by default), on the tables with wide
-- rows. A span row is ~1.3 KB before compression, so an insert of more than ~8,000 spans used
-- to be a wide part (ClickHouse's default min_bytes_for_wide_part is 10 MiB): one file per
-- column and sub-column, ~140 files, each written and fsynced (fsync_after_insert on the
-- embedded server). A compact part has all columns in one file: measured on the embedded
-- server, 47 instead of 70 ms of ClickHouse CPU per 13,000-span insert, and at 2 x 32 requests
-- in flight 11.6 instead of 12.8 us per span in all (docs/BENCHMARKS.md, round 3). Merged
-- parts of 60,000 rows and more are wide as before. Columns, engines, keys and TTLs are
-- unchanged, so the tables stay the exporter's.
-- Placeholders (string.Template): database; cluster = '' or 'ON CLUSTER <name>'.
-- tuning: min_rows_for_wide_part (a failure, e.g. a user without ALTER SETTINGS, is logged and
-- does not stop the receiver)
-- needs_setting: min_rows_for_wide_part
ALTER TABLE "${database}"."otel_traces" ${cluster} MODIFY SETTING min_rows_for_wide_part = 60000;
ALTER TABLE "${database}"."otel_logs" ${cluster} MODIFY SETTING min_rows_for_wide_part = 60000;
