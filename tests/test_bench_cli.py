"""`dwcore bench` end to end: the command runs, prints its table and writes valid JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def test_bench_quick_writes_json(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "from dwcore.cli import main; main()",
            "bench",
            "--quick",
            "--only",
            "xor,alloc",
            "--no-out-of-cache",
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,  # import the installed package, not the source tree
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "xor" in proc.stdout and "allocator" in proc.stdout.lower()
    data = json.loads(out.read_text())
    assert data["rows"], "no result rows"
    judged = [t for t in data["targets"] if t["met"] is not None]
    assert judged, "no target was judged"
    assert all(isinstance(t["met"], bool) for t in judged)
    assert all(isinstance(t["value"], float) for t in judged)
