# The receiver (with the embedded ClickHouse available when no URL is set).
#   docker build -t agent-otel-receiver .
# It listens on all interfaces inside the container, so it needs bearer tokens
# (OTEL_RECEIVER_AUTH_TOKENS_FILE), client certificates, or
# OTEL_RECEIVER_INSECURE_ALLOW_UNAUTHENTICATED=true with ports published on loopback only.
FROM python:3.11-slim
RUN useradd --system --create-home --home-dir /var/lib/agent-otel-receiver otel
WORKDIR /app
COPY pyproject.toml README.md ./
COPY receiver ./receiver
COPY schema ./schema
COPY sql ./sql
COPY config ./config
RUN pip install --no-cache-dir '.[local]'
USER otel
ENV OTEL_RECEIVER_DATA_DIR=/var/lib/agent-otel-receiver \
    OTEL_RECEIVER_GRPC_LISTEN=0.0.0.0:4317 \
    OTEL_RECEIVER_HTTP_LISTEN=0.0.0.0:4318 \
    OTEL_RECEIVER_METRICS_LISTEN=127.0.0.1:9464
VOLUME /var/lib/agent-otel-receiver
EXPOSE 4317 4318
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=5s \
  CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:4318/health', timeout=3)"
CMD ["otel-receiver", "serve"]
