"""Peak-memory readings a tool can trust: the mark is this process's, after a reset, not its parent's."""

import subprocess
import sys

import pytest

from speechssl.errors import InputError
from speechssl.utils.memory import check_fits, peak_rss_bytes

_CHILD = """
import numpy as np
from speechssl.utils.memory import peak_rss_bytes, reset_peak_rss
big = np.ones(300 * 2**20 // 8); del big          # a 300 MB peak that is over before the reset
print(int(reset_peak_rss()))
before = peak_rss_bytes()
small = np.ones(60 * 2**20 // 8)                   # 60 MB held after the reset
print((peak_rss_bytes() - before) / 2**20)
"""


def test_the_peak_after_a_reset_is_what_came_after_it():
    run = subprocess.run([sys.executable, "-c", _CHILD], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    reset, rise = run.stdout.split()
    if reset != "1":
        pytest.skip("the peak-RSS mark cannot be reset on this system (no /proc/self/clear_refs)")
    assert 50 < float(rise) < 120, rise  # the 60 MB array, not the 300 MB peak before the reset


def test_peak_rss_is_at_least_what_is_resident():
    assert peak_rss_bytes() > 10 * 2**20


def test_an_allocation_larger_than_the_machine_is_refused_naming_it():
    with pytest.raises(InputError, match="the encoder's weights needs .* GiB"):
        check_fits(2**60, "the encoder's weights")
