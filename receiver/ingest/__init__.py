"""Ingest: the OTLP front ends (gRPC, HTTP), authentication, TLS, input limits, decoding.

The first stage: bytes arrive, are bounded and checked, and leave as rows. Nothing here
writes to disk.
"""
