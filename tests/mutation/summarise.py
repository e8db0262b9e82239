"""Counts of one module's mutmut results (the output of ``mutmut results --all true``).

    python3 summarise.py MODULE FILE
"""

from __future__ import annotations

import collections
import sys
from pathlib import Path


def summarise(module: str, path: Path) -> str:
    status = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if ": " in line:
            name, _, verdict = line.strip().rpartition(": ")
            status[name] = verdict
    counts = collections.Counter(status.values())
    total, killed = len(status), counts["killed"]
    survivors = [name for name, verdict in status.items() if verdict != "killed"]
    other = len(survivors) - counts["survived"] - counts["timeout"]
    lines = [f"{module}: {total} mutants, {killed} killed, {counts['survived']} survived, "
             f"{counts['timeout']} timeouts, {other} other ({dict(counts)}), "
             f"score {100 * killed / max(total, 1):.1f}%"]
    lines += [f"  {status[name]}: {name}" for name in survivors]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.stdout.write(summarise(sys.argv[1], Path(sys.argv[2])) + "\n")
