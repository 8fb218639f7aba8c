-- alert_state: the alert evaluator's memory (receiver/query/alerts.py), shared by every
-- receiver on this database, so a restart does not notify again and only one receiver
-- notifies. Kind says what a row is:
--   state: one label set of a rule (Key = hash of its labels): ok | pending | firing | resolved,
--          its last value, when the condition began to hold (ActiveSince), when it fired
--          (StartsAt), cleared (EndsAt) and was last notified (LastNotifiedAt);
--   rule:  one per rule (Key ''): the last evaluation (worst State, Value, Detail = error);
--   claim: who evaluates a rule's time slot or sends a notification (Key names it). Claims are
--          inserted with insert_deduplication_token = Key, so only the first insert of a Key
--          is stored; every receiver reads back the row to learn which one won. A
--          notification claim's Detail is the JSON sent and Outcome claimed | sent | failed |
--          no_webhook (a rule without notify URLs).
-- The newest Version wins (query with FINAL), except claims: the oldest row is the winner.
-- ttl_column: toDateTime(UpdatedAt)
CREATE TABLE IF NOT EXISTS "${database}"."alert_state" ${cluster} (
    Rule LowCardinality(String) CODEC(ZSTD(1)),
    Kind LowCardinality(String) CODEC(ZSTD(1)),
    Key String CODEC(ZSTD(1)),
    Labels Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    State LowCardinality(String) CODEC(ZSTD(1)),
    Value Float64 CODEC(ZSTD(1)),
    ActiveSince DateTime64(3) CODEC(Delta, ZSTD(1)),
    StartsAt DateTime64(3) CODEC(Delta, ZSTD(1)),
    EndsAt DateTime64(3) CODEC(Delta, ZSTD(1)),
    LastNotifiedAt DateTime64(3) CODEC(Delta, ZSTD(1)),
    Outcome LowCardinality(String) CODEC(ZSTD(1)),
    Receiver String CODEC(ZSTD(1)),
    Detail String CODEC(ZSTD(1)),
    UpdatedAt DateTime64(3) CODEC(Delta, ZSTD(1)),
    Version UInt64 CODEC(ZSTD(1))
) ENGINE = ReplacingMergeTree(Version)
ORDER BY (Rule, Kind, Key)
${ttl_expr}
SETTINGS index_granularity = 8192, non_replicated_deduplication_window = 10000
