"""A stand-in for ``nvidia-smi --query-gpu=index,power.draw --format=csv,noheader,nounits -lms N -i I,J``.

Prints ``<index>, <watts>`` for every GPU of ``-i`` every ``-lms`` milliseconds, as nvidia-smi does, at the constant
power given by the environment variable ``FAKE_SMI_POWER_W`` (default 90). Run as a script.
"""

from __future__ import annotations

import os
import sys
import time


def main(argv: list[str]) -> None:
    poll_s = int(argv[argv.index("-lms") + 1]) / 1000.0
    indices = argv[argv.index("-i") + 1].split(",")
    power_w = float(os.environ.get("FAKE_SMI_POWER_W", "90"))
    while True:
        for index in indices:
            print(f"{index}, {power_w:.2f}", flush=True)
        time.sleep(poll_s)


if __name__ == "__main__":
    main(sys.argv[1:])
