"""Run every benchmark script in this folder, one after the other, printing their tables."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def main() -> int:
    """Run benchmarks/bench_*.py with this interpreter; return non-zero if one failed."""
    failed = 0
    for script in sorted(Path(__file__).parent.glob("bench_*.py")):
        sys.stdout.write(f"\n=== {script.name}\n")
        sys.stdout.flush()
        failed |= subprocess.call([sys.executable, str(script)]) != 0
    return failed


if __name__ == "__main__":
    sys.exit(main())
