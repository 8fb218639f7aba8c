"""The daemon's fixed mmap threshold (``receiver.daemon.fix_mmap_threshold``) in a fresh
process: after a large block is freed, glibc would carve the next large blocks out of its heap;
with the threshold fixed they get mappings of their own, given back to the system when freed."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

PROBE = """
import ctypes, sys
from receiver.daemon import fix_mmap_threshold

class MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
                 "uordblks", "fordblks", "keepcost")]

mallinfo2 = ctypes.CDLL(None).mallinfo2
mallinfo2.restype = MallInfo2
held = bytearray(16 << 20)  # freeing it raises glibc's own threshold to 16 MiB
del held
if sys.argv[1] == "fixed":
    assert fix_mmap_threshold()
before = mallinfo2().hblkhd
block = bytearray(2 << 20)  # a large insert buffer or a batch of request bodies
print(mallinfo2().hblkhd - before)
"""


def _mapped_growth(mode: str) -> int:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, mode], capture_output=True, text=True, timeout=60, check=True
    )
    return int(done.stdout)


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="a glibc malloc setting")
def test_large_blocks_get_their_own_mappings_once_the_threshold_is_fixed() -> None:
    assert _mapped_growth("fixed") >= 2 << 20
    assert _mapped_growth("glibc default") == 0  # what it changes: the heap would take it
