"""Delivery: batching, the spool, and getting batches into ClickHouse exactly once.

A request is acknowledged only once its batch is durable (in ClickHouse or the fsynced
spool).
"""
