-- Merge less often: merge_selector_base 20 (ClickHouse's default is 5) on the tables written
-- for every item. The merge selector then waits for about four times as many parts of a size
-- before merging them, so each row is rewritten fewer times as its parts grow (write
-- amplification ~log20 instead of ~log5 of a partition's size; parts still merge as they
-- age). Measured on the embedded server (docs/BENCHMARKS.md, round 3): 10 instead of 5 took
-- insert + merge CPU of otel_traces about -20 % per span; 20 instead of 10 took merges at
-- 2 x 32 requests in flight from 0.22 to 0.15 cores and ClickHouse from 10.3-11.0 to
-- 8.8-9.5 us per span; 200 inserts of 13,400 spans cost 6.3 instead of 7.0 us per row until
-- their merges settled, with 18-25 instead of 9-23 parts alive meanwhile. Columns, engines,
-- keys and TTLs are unchanged, so the tables stay the exporter's.
-- Placeholders (string.Template): database; cluster = '' or 'ON CLUSTER <name>'.
-- tuning: merge_selector_base (a failure, e.g. a user without ALTER SETTINGS, is logged and
-- does not stop the receiver)
-- needs_setting: merge_selector_base
ALTER TABLE "${database}"."otel_traces" ${cluster} MODIFY SETTING merge_selector_base = 20;
ALTER TABLE "${database}"."otel_traces_trace_id_ts" ${cluster} MODIFY SETTING merge_selector_base = 20;
ALTER TABLE "${database}"."otel_logs" ${cluster} MODIFY SETTING merge_selector_base = 20;
ALTER TABLE "${database}"."otel_metrics_gauge" ${cluster} MODIFY SETTING merge_selector_base = 20;
ALTER TABLE "${database}"."otel_metrics_sum" ${cluster} MODIFY SETTING merge_selector_base = 20;
ALTER TABLE "${database}"."otel_metrics_histogram" ${cluster} MODIFY SETTING merge_selector_base = 20;
ALTER TABLE "${database}"."otel_metrics_exponential_histogram" ${cluster} MODIFY SETTING merge_selector_base = 20;
ALTER TABLE "${database}"."otel_metrics_summary" ${cluster} MODIFY SETTING merge_selector_base = 20;
ALTER TABLE "${database}"."agent_spans" ${cluster} MODIFY SETTING merge_selector_base = 20;
ALTER TABLE "${database}"."agent_run_sightings" ${cluster} MODIFY SETTING merge_selector_base = 20;
