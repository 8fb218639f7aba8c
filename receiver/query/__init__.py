"""The query side: named reports, the session tree and ``status``; reads, never writes."""
