"""The optional compiled decoder ``receiver.ingest._fastdecode`` (metadata: pyproject.toml).

``optional=True``: without a working C compiler the install still succeeds and the receiver
uses the pure-Python decoder (``receiver.ingest.fastpath``). The C reads little-endian wire
fields with memcpy, so big-endian hosts skip it.
"""

import sys

from setuptools import Extension, setup

FAST_DECODE = Extension(
    "receiver.ingest._fastdecode",
    ["receiver/ingest/_fastdecode.c"],
    optional=True,
    extra_compile_args=["-O2", "-Wall"],
)

setup(ext_modules=[FAST_DECODE] if sys.byteorder == "little" else [])
