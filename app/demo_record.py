"""What a running ``make run`` records about itself in ``var/demo.json``, and what the demo's
settings make of it: the origin's address, every verifier and the bucket the files are in (with
``STORAGE=s3``), for the management commands.

harness/demo.py writes the record; app/settings.py reads it (no Django here, so both can).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

DEMO_RECORD = "demo.json"  # in the var folder


def read_record(var_dir: Path) -> dict[str, Any]:
    """The running demo's record in ``var_dir``; empty when no demo runs there."""
    try:
        record = json.loads((var_dir / DEMO_RECORD).read_text())
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def running_demo(record: dict[str, Any]) -> dict[str, Any]:
    """The running demo's origin and verifiers (from :func:`read_record`), as SECURE_LINK entries."""
    if not record:
        return {}
    verifiers = [(str(entry["name"]), str(entry["url"])) for entry in record.get("verifiers", [])]
    return {"ORIGIN_URL": str(record.get("base_url", "")), "VERIFIERS": verifiers}


def running_demo_bucket(record: dict[str, Any]) -> str:
    """The URL of the bucket the running demo's files are in (``STORAGE=s3``), else ""."""
    storage = record.get("storage", {})
    return str(storage.get("url", "")) if isinstance(storage, dict) else ""
