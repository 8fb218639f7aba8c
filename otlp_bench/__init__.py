"""otlp-bench: load generator and meter for the receiver, outside the daemon's import graph."""
