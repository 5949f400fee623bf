"""Named signing keys: validation, the ``kid=secret`` text format and nginx's keys includes.

A key set maps key ids to secrets. Links are signed with one active key and nginx accepts
every key in the set, which is what makes rotation possible. Each key has one algorithm,
``md5`` (nginx's stock secure_link, the default) or ``hmac-sha256`` (checked by njs), written
``kid=hmac-sha256:SECRET`` in a keys file; a link is accepted only in its key's algorithm,
so moving from one to the other is an ordinary rotation. Secrets never appear in a message
or a repr.
"""

from __future__ import annotations

import os
import re
import secrets
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

MIN_SECRET_LENGTH = 32
# Key ids go verbatim into URLs and into nginx's `map`, which compares case-insensitively.
KID_PATTERN = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")
# Secrets go between double quotes in nginx's config: no '$', quote, backslash or space.
SECRET_PATTERN = re.compile(r"[A-Za-z0-9._~+/=-]+")
MD5, HMAC_SHA256 = "md5", "hmac-sha256"
ALGORITHMS = (MD5, HMAC_SHA256)
# nginx's includes: the MD5 keys for the stock module, the HMAC keys for njs (two maps).
NGINX_KEYS_FILE = "secure_link_keys.conf"
NGINX_HMAC_KEYS_FILE = "secure_link_hmac_keys.conf"


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


@dataclass(frozen=True)
class KeySet:
    """Keys in order (newest last) and which one signs: ``active_kid``, else the last key.

    ``active_since`` (Unix seconds) is when the active key started signing: every other key
    has signed nothing since, so its links are all dead once the longest TTL has passed.
    ``algorithms`` names the keys that are not MD5 keys (``{"k2": "hmac-sha256"}``).
    """

    keys: dict[str, str]
    active_kid: str | None = None
    active_since: int | None = None
    algorithms: dict[str, str] = field(default_factory=dict)

    @property
    def signing_kid(self) -> str | None:
        return self.active_kid or (list(self.keys)[-1] if self.keys else None)

    def algorithm(self, kid: str) -> str:
        return self.algorithms.get(kid, MD5)


def parse_key_set(text: str) -> KeySet:
    """Parse ``kid=[ALGORITHM:]secret`` entries (newlines or commas) and an optional ``active: KID [since T]``.

    ``#`` starts a comment. Errors name the line, never a secret.
    """
    keys: dict[str, str] = {}
    algorithms: dict[str, str] = {}
    active_kid: str | None = None
    active_since: int | None = None
    for line_number, line in enumerate(text.splitlines(), start=1):
        for entry in line.split("#", 1)[0].split(","):
            entry = entry.strip()
            if not entry:
                continue
            if entry.startswith("active:"):
                active_kid, active_since = _parse_active(entry, line_number)
                continue
            kid, separator, secret = entry.partition("=")
            if not separator:
                raise ValueError(f"line {line_number}: expected 'kid=secret' or 'active: kid', got no '='")
            kid = kid.strip()
            if kid in keys:
                raise ValueError(f"line {line_number}: key id {kid!r} appears twice")
            algorithm, colon, bare_secret = secret.strip().rpartition(":")
            if colon and algorithm not in ALGORITHMS:
                raise ValueError(f"line {line_number}: key {kid!r} names an unknown algorithm; use one of {ALGORITHMS}")
            keys[kid] = bare_secret
            if colon and algorithm != MD5:
                algorithms[kid] = algorithm
    return KeySet(keys, active_kid, active_since, algorithms)


def _parse_active(entry: str, line_number: int) -> tuple[str, int | None]:
    words = entry[len("active:"):].split()
    if len(words) == 1:
        return words[0], None
    if len(words) == 3 and words[1] == "since" and words[2].isdigit():
        return words[0], int(words[2])
    raise ValueError(f"line {line_number}: expected 'active: KID' or 'active: KID since UNIX_SECONDS'")


def parse_keys(text: str) -> dict[str, str]:
    """The keys of :func:`parse_key_set`, in order: the last entry is the newest key."""
    return parse_key_set(text).keys


def render_key_set(key_set: KeySet) -> str:
    """The text of a keys file for ``key_set`` (what :func:`parse_key_set` reads back)."""
    lines = ["# Signing keys: kid=[algorithm:]secret, newest last. The active key signs; every key verifies.\n"]
    lines += [f"{kid}={_algorithm_prefix(key_set.algorithm(kid))}{secret}\n" for kid, secret in key_set.keys.items()]
    if key_set.active_kid:
        since = f" since {key_set.active_since}" if key_set.active_since is not None else ""
        lines.append(f"active: {key_set.active_kid}{since}\n")
    return "".join(lines)


def _algorithm_prefix(algorithm: str) -> str:
    return "" if algorithm == MD5 else f"{algorithm}:"


def render_nginx_keys(keys: Mapping[str, str], algorithms: Mapping[str, str] | None = None,
                      *, algorithm: str = MD5) -> str:
    """The body of nginx's key map for ``algorithm``: one ``"kid" "secret";`` line per key of it."""
    check_keys(keys)
    chosen = [(kid, secret) for kid, secret in keys.items() if (algorithms or {}).get(kid, MD5) == algorithm]
    lines = [f"# Generated from the signing keys ({algorithm} keys): do not edit by hand.\n"]
    lines += [f'"{kid}" "{secret}";\n' for kid, secret in chosen]
    return "".join(lines)


def nginx_key_files(key_set: KeySet) -> dict[str, str]:
    """File name -> content of both of nginx's keys includes (MD5 keys, HMAC-SHA256 keys)."""
    return {
        NGINX_KEYS_FILE: render_nginx_keys(key_set.keys, key_set.algorithms, algorithm=MD5),
        NGINX_HMAC_KEYS_FILE: render_nginx_keys(key_set.keys, key_set.algorithms, algorithm=HMAC_SHA256),
    }


def write_nginx_keys(path: Path, key_set: KeySet) -> list[Path]:
    """Write the MD5 include to ``path`` and the HMAC one beside it (0600, atomic); return both paths."""
    path = Path(path)
    contents = nginx_key_files(key_set)
    written = [path, path.with_name(NGINX_HMAC_KEYS_FILE)]
    write_private_file(written[0], contents[NGINX_KEYS_FILE])
    write_private_file(written[1], contents[NGINX_HMAC_KEYS_FILE])
    return written


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
