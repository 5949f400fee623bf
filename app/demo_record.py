"""What a running ``make run`` records about itself in ``var/demo.json``, and what the demo's
settings make of it: the origin's address and every verifier, for the management commands.

harness/demo.py writes the record; app/settings.py reads it (no Django here, so both can).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

DEMO_RECORD = "demo.json"  # in the var folder


def running_demo(var_dir: Path) -> dict[str, Any]:
    """What a running ``make run`` recorded in ``var/demo.json`` for the management commands (the
    origin's address and every verifier), as SECURE_LINK entries; empty when no demo runs."""
    try:
        record = json.loads((var_dir / DEMO_RECORD).read_text())
    except (OSError, ValueError):
        return {}
    verifiers = [(str(entry["name"]), str(entry["url"])) for entry in record.get("verifiers", [])]
    return {"ORIGIN_URL": str(record.get("base_url", "")), "VERIFIERS": verifiers}
