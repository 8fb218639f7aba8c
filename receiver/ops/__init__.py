"""Operating the daemon: structured logs and Prometheus self-metrics."""
