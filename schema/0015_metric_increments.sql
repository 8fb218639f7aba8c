-- metric_increments: what each point of a Sum metric added, whatever its temporality. The one
-- copy of the cumulative-to-delta rule the reports share (sql/sessions.sql, tokens_by_model.sql,
-- productivity.sql and the Grafana dashboard built from them): DELTA points (temporality 1)
-- count their Value; CUMULATIVE points (2) count what each added since the previous point of
-- the same series (metric, service, resource, attributes, StartTimeUnix), the first point of a
-- series counting its whole Value, and a monotonic counter that went down counting as reset.
-- Points flagged "no recorded value" (Flags bit 0) are left out. A plain view over the whole
-- table: reports filter on TimeUnix (the window of the point) and MetricName themselves, so
-- every report stays one query any ClickHouse client can run.
-- Placeholders (string.Template): database; cluster = '' or 'ON CLUSTER <name>'. No engine,
-- no TTL (the view stores nothing).
CREATE VIEW IF NOT EXISTS "${database}"."metric_increments" ${cluster}
AS SELECT MetricName, ServiceName, ResourceAttributes, Attributes, StartTimeUnix, TimeUnix,
          AggregationTemporality,
          if(AggregationTemporality = 2,
             if(IsMonotonic AND Value < Previous, Value, Value - Previous),
             Value) AS Delta
FROM (
    SELECT MetricName, ServiceName, ResourceAttributes, Attributes, StartTimeUnix, TimeUnix,
           Value, AggregationTemporality, IsMonotonic,
           lagInFrame(Value, 1, 0.) OVER (
               PARTITION BY MetricName, ServiceName, cityHash64(ResourceAttributes),
                            cityHash64(Attributes), StartTimeUnix, AggregationTemporality
               ORDER BY TimeUnix ROWS BETWEEN 1 PRECEDING AND CURRENT ROW) AS Previous
    FROM "${database}"."otel_metrics_sum"
    WHERE bitAnd(Flags, 1) = 0
)
