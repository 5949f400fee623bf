"""Named signing keys: validation, the ``kid=secret`` text format and nginx's keys include.

A key set maps key ids to secrets. Links are signed with one active key and nginx accepts
every key in the set, which is what makes rotation possible. Secrets never appear in a
message or a repr.
"""

from __future__ import annotations

import os
import re
import secrets
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

MIN_SECRET_LENGTH = 32
# Key ids go verbatim into URLs and into nginx's `map`, which compares case-insensitively.
KID_PATTERN = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")
# Secrets go between double quotes in nginx's config: no '$', quote, backslash or space.
SECRET_PATTERN = re.compile(r"[A-Za-z0-9._~+/=-]+")


@dataclass(frozen=True)
class KeyProblem:
    """One reason a key set cannot be used; ``code`` is stable, ``message`` says the fix."""

    code: str  # "no-keys", "bad-kid", "short-secret" or "bad-secret"
    message: str


def key_problems(keys: Mapping[str, str]) -> list[KeyProblem]:
    """Every problem with ``keys``, naming key ids but never secrets."""
    if not keys:
        return [KeyProblem("no-keys", "no signing keys: configure at least one 'kid=secret' pair")]
    problems = []
    for kid, secret in keys.items():
        if not KID_PATTERN.fullmatch(kid):
            problems.append(KeyProblem(
                "bad-kid", f"key id {kid!r} is not valid: use 1-32 characters of a-z, 0-9, '_' and '-'"
            ))
        if len(secret) < MIN_SECRET_LENGTH:
            problems.append(KeyProblem(
                "short-secret",
                f"the secret of key {kid!r} has {len(secret)} characters; at least "
                f"{MIN_SECRET_LENGTH} are required (make one with `python -m signing genkey`)",
            ))
        elif not SECRET_PATTERN.fullmatch(secret):
            problems.append(KeyProblem(
                "bad-secret",
                f"the secret of key {kid!r} has characters nginx cannot hold in its config; "
                "use A-Z a-z 0-9 and . _ ~ + / = - (make one with `python -m signing genkey`)",
            ))
    return problems


def check_keys(keys: Mapping[str, str]) -> None:
    """Raise ValueError, naming the key id, if any key cannot be used by both sides."""
    problems = key_problems(keys)
    if problems:
        raise ValueError(problems[0].message)


def generate_secret() -> str:
    """Return a new random secret: 32 random bytes as 43 base64url characters."""
    return secrets.token_urlsafe(32)


def parse_keys(text: str) -> dict[str, str]:
    """Parse ``kid=secret`` entries separated by newlines or commas; ``#`` starts a comment.

    The order is kept: the last entry is the newest key.
    """
    keys: dict[str, str] = {}
    for line_number, line in enumerate(text.splitlines(), start=1):
        for entry in line.split("#", 1)[0].split(","):
            entry = entry.strip()
            if not entry:
                continue
            kid, separator, secret = entry.partition("=")
            if not separator:
                raise ValueError(f"line {line_number}: expected 'kid=secret', got no '='")
            kid = kid.strip()
            if kid in keys:
                raise ValueError(f"line {line_number}: key id {kid!r} appears twice")
            keys[kid] = secret.strip()
    return keys


def render_nginx_keys(keys: Mapping[str, str]) -> str:
    """Return the body of nginx's ``map $arg_kid $secure_link_secret`` (one line a key)."""
    check_keys(keys)
    lines = ["# Generated from the signing keys: do not edit by hand.\n"]
    lines += [f'"{kid}" "{secret}";\n' for kid, secret in keys.items()]
    return "".join(lines)


def write_private_file(path: Path, content: str) -> None:
    """Write ``content`` to ``path`` with mode 0600, replacing any old file atomically."""
    path = Path(path)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as stream:
            stream.write(content)
        os.chmod(temporary, 0o600)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise
