"""What the results were measured on."""

from __future__ import annotations

import os
import platform
import subprocess

from harness.nginx import nginx_binary


def describe() -> dict[str, str]:
    nginx = subprocess.run([nginx_binary(), "-v"], capture_output=True, text=True).stderr.strip().split("/")[-1]
    wrk = subprocess.run(["wrk", "--version"], capture_output=True, text=True).stdout.split(" [")[0].strip().removeprefix("wrk ")
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    return {
        "cores": str(os.cpu_count()),
        "CPU": cpu,
        "Python": platform.python_version(),
        "nginx": nginx,
        "wrk": wrk or "?",
        "kernel": platform.release(),
    }
