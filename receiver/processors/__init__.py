"""Row processors between decoding and batching: redaction, then stitching.

Redaction runs first so that nothing later (batching, the spool, ClickHouse) ever sees a
secret.
"""
