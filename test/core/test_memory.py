"""Freed heap memory goes back to the OS: blocks freed below a live block (which stops glibc from
shrinking the heap by itself) leave the resident size only after ``release_freed_memory``."""

import sys

import pytest

from recon_ros.core.memory import release_freed_memory


def resident_mib() -> float:
    with open("/proc/self/statm") as file:
        return int(file.read().split()[1]) * 4096 / 2**20


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc and /proc only")
def test_freed_blocks_below_a_live_one_are_released():
    release_freed_memory()
    blocks = [bytearray(32 * 1024) for _ in range(6000)]  # ~190 MiB below the mmap threshold
    pin = bytearray(32 * 1024)  # a live block above them keeps the heap from shrinking
    before_free = resident_mib()
    del blocks
    after_free = resident_mib()
    assert release_freed_memory() is True
    after_trim = resident_mib()
    assert before_free - after_free < 50, "freed without the trim: the test shows nothing"
    assert after_free - after_trim > 150
    del pin
