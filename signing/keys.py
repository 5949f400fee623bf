"""Signing keys as one value: a :class:`Key` carries its algorithm, a :class:`KeySet` its rules.

A key set lists keys oldest first. One key is active (it signs new links); every key
verifies, each in its own algorithm only, which is what makes rotation possible. The keys
file format, one entry per line (or comma-separated)::

    # comment
    k1=SECRET                 an MD5 key (nginx's stock secure_link)
    h1=hmac-sha256:SECRET     an HMAC-SHA256 key (checked in Lua)
    cf1=cloudfront:K2JCJMDEHXQW5F:MIIEvQ...   a CloudFront key: its public key id, its RSA key
    my-key=cloudcdn:BASE64URL a Cloud CDN key (the kid is its key name)
    ak1=akamai:HEX            an Akamai EdgeAuth key
    active: k1 since 1767225600
    retired: k0

Without an ``active:`` line the last key signs. ``since`` is when the active key started
signing: every other key has signed nothing since, so once the longest link lifetime has
passed their links are all dead and they may be retired. A retired key's id stays reserved
on the ``retired:`` line: a kid never comes back with another secret, so every log, status
line and alert that names it means one key. Secrets never appear in a message or a repr.
"""

from __future__ import annotations

import enum
import os
import re
import secrets
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from .algorithms import ALGORITHMS, MD5, NGINX_ALGORITHMS, NGINX_TARGET, CDNKeyAlgorithm, SigningAlgorithm
from .encoding import utc_iso
from .exc import KeySetError

MIN_SECRET_LENGTH = 32
# Key ids go verbatim into URLs and into nginx's `map`, which compares case-insensitively.
KID_PATTERN = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")
# Secrets go between double quotes in nginx's config: no '$', quote, backslash or space.
SECRET_PATTERN = re.compile(r"[A-Za-z0-9._~+/=-]+")
_NO_KEYS = "no signing keys: configure at least one 'kid=secret' pair"
_BAD_KID = "key id {kid!r} is not valid: use 1-32 characters of a-z, 0-9, '_' and '-'"
KEYS_FILE_NAME = "secure_link.keys"  # the keys file's name in a deployment's var folder
ENVIRONMENT_KEYS = "SECURE_LINK_KEYS"
ENVIRONMENT_ACTIVE_KID = "SECURE_LINK_ACTIVE_KID"


def generate_secret() -> str:
    """Return a new random secret: 32 random bytes as 43 base64url characters."""
    return secrets.token_urlsafe(32)


@dataclass(frozen=True)
class Key:
    """One signing key: its id, its secret (never shown) and the algorithm of its links."""

    kid: str
    secret: str = field(repr=False)
    algorithm: SigningAlgorithm = MD5

    def render(self) -> str:
        """The key's keys-file entry: ``kid=secret``, or ``kid=ALGORITHM:secret``."""
        prefix = "" if self.algorithm is MD5 else f"{self.algorithm.name}:"
        return f"{self.kid}={prefix}{self.secret}"


@dataclass(frozen=True)
class KeyProblem:
    """One reason a key set cannot be used; ``code`` is stable, ``message`` says the fix."""

    code: str  # "no-keys", "bad-kid", "short-secret", "bad-secret" or "unknown-active"
    message: str


class KeyState(enum.Enum):
    """Where a key stands in its lifecycle (``KeySet.states``)."""

    PENDING = "added, not signing yet"
    ACTIVE = "active (signs new links)"
    IN_USE = "verifies only; its links may still live"
    RETIRABLE = "verifies only; may be retired"
    UNKNOWN = "verifies only; when it stopped signing is unknown (retire needs --force)"


@dataclass(frozen=True)
class KeySet:
    """Keys oldest first, the pinned active key id (else the last key signs) and since when,
    and the ids of retired keys, which are never given out again."""

    keys: tuple[Key, ...] = ()
    active_kid: str | None = None
    active_since: int | None = None
    retired_kids: tuple[str, ...] = ()

    # Reading ---------------------------------------------------------------------------

    @classmethod
    def parse(cls, text: str) -> KeySet:
        """Read a keys file's text; KeySetError names the line, never a secret."""
        keys: dict[str, Key] = {}
        active_kid, active_since = None, None
        retired: list[str] = []
        for line_number, line in enumerate(text.splitlines(), start=1):
            for entry in line.split("#", 1)[0].split(","):
                entry = entry.strip()
                if entry.startswith("active:"):
                    active_kid, active_since = _parse_active(entry, line_number)
                elif entry.startswith("retired:"):
                    retired += _parse_retired(entry, line_number)
                elif entry:
                    key = _parse_key(entry, line_number)
                    if key.kid in keys:
                        raise KeySetError(f"line {line_number}: key id {key.kid!r} appears twice")
                    keys[key.kid] = key
        both = [kid for kid in retired if kid in keys]
        if both:
            raise KeySetError(f"key id {both[0]!r} is both a key and retired: a retired key id is never used again")
        return cls(tuple(keys.values()), active_kid, active_since, tuple(dict.fromkeys(retired)))

    @classmethod
    def from_file(cls, path: Path) -> KeySet:
        """The key set of a keys file; OSError if unreadable, KeySetError if malformed."""
        try:
            return cls.parse(Path(path).read_text(encoding="utf-8"))
        except UnicodeDecodeError as error:
            raise KeySetError(f"{path} is not UTF-8 text: {error}") from None

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ) -> KeySet:
        """``$SECURE_LINK_KEYS`` (empty when unset), its active key pinned by ``$SECURE_LINK_ACTIVE_KID``."""
        try:
            key_set = cls.parse(environ.get(ENVIRONMENT_KEYS, ""))
        except KeySetError as error:
            raise KeySetError(f"cannot read the signing keys from {ENVIRONMENT_KEYS}: {error}") from None
        pinned = environ.get(ENVIRONMENT_ACTIVE_KID)
        return key_set.with_active(pinned) if pinned else key_set

    # Looking up ------------------------------------------------------------------------

    def __iter__(self) -> Iterator[Key]:
        return iter(self.keys)

    def __len__(self) -> int:
        return len(self.keys)

    def __contains__(self, kid: object) -> bool:
        return any(key.kid == kid for key in self.keys)

    @property
    def kids(self) -> tuple[str, ...]:
        return tuple(key.kid for key in self.keys)

    def get(self, kid: str) -> Key | None:
        return next((key for key in self.keys if key.kid == kid), None)

    def __getitem__(self, kid: str) -> Key:
        key = self.get(kid)
        if key is None:
            raise KeySetError(f"no key {kid!r} (keys: {', '.join(self.kids) or 'none'})")
        return key

    @property
    def active(self) -> Key:
        """The key that signs new links; KeySetError when there is none."""
        if self.active_kid is None:
            if not self.keys:
                raise KeySetError(_NO_KEYS)
            return self.keys[-1]
        return self[self.active_kid]

    @property
    def active_kid_or_last(self) -> str | None:
        """The id of the key that signs, or None when there are no keys."""
        return self.active_kid or (self.keys[-1].kid if self.keys else None)

    # Checking --------------------------------------------------------------------------

    def problems(self) -> list[KeyProblem]:
        """Everything that stops this key set from signing and verifying, naming key ids only."""
        if not self.keys:
            return [KeyProblem("no-keys", _NO_KEYS)]
        problems = [problem for key in self.keys for problem in _key_problems(key)]
        if self.active_kid is not None and self.active_kid not in self:
            problems.append(KeyProblem(
                "unknown-active", f"the active key id {self.active_kid!r} is not among the key ids {list(self.kids)}"
            ))
        return problems

    def check(self) -> KeySet:
        """Return the key set if it can be used, else raise KeySetError with its first problem."""
        problems = self.problems()
        if problems:
            raise KeySetError(problems[0].message)
        return self

    # Writing ---------------------------------------------------------------------------

    def render(self) -> str:
        """The text of a keys file for this key set (what :meth:`parse` reads back)."""
        lines = ["# Signing keys: kid=[algorithm:]secret, oldest first. The active key signs; every key verifies.\n"]
        lines += [key.render() + "\n" for key in self.keys]
        if self.active_kid:
            since = f" since {self.active_since}" if self.active_since is not None else ""
            lines.append(f"active: {self.active_kid}{since}\n")
        if self.retired_kids:
            lines.append(f"retired: {' '.join(self.retired_kids)}  # reserved: never used again\n")
        return "".join(lines)

    def nginx_includes(self) -> dict[str, str]:
        """File name -> content of nginx's keys includes: one ``"kid" "secret";`` map body per
        nginx algorithm (a CDN's keys never reach nginx)."""
        self.check()
        return {
            algorithm.nginx_include: f"# Generated from the signing keys ({algorithm.name} keys): do not edit by hand.\n"
            + "".join(f'"{key.kid}" "{key.secret}";\n' for key in self.keys if key.algorithm is algorithm)
            for algorithm in NGINX_ALGORITHMS
        }

    def nginx_keys(self) -> KeySet:
        """The keys nginx verifies (MD5 and HMAC-SHA256), with the same active key when it is one of them."""
        keys = tuple(key for key in self.keys if key.algorithm.delivery_target == NGINX_TARGET)
        if len(keys) == len(self.keys):
            return self
        active = self.active_kid if any(key.kid == self.active_kid for key in keys) else None
        return KeySet(keys, active, self.active_since if active else None, self.retired_kids)

    def write_nginx_includes(self, directory: Path) -> list[Path]:
        """Write nginx's keys includes into ``directory`` (each 0600, replaced atomically)."""
        written = []
        for name, content in self.nginx_includes().items():
            write_private_file(Path(directory) / name, content)
            written.append(Path(directory) / name)
        return written

    def write(self, path: Path) -> None:
        """Write the keys file (0600, replaced atomically: a reader sees the old or the new file)."""
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        write_private_file(Path(path), self.render())

    # The lifecycle ---------------------------------------------------------------------

    def with_active(self, kid: str) -> KeySet:
        """The same keys with ``kid`` pinned as the signing key (its ``since`` unknown)."""
        return replace(self, active_kid=kid, active_since=None)

    def add(
        self, kid: str | None = None, *, algorithm: SigningAlgorithm = MD5, now: int, secret: str | None = None
    ) -> tuple[KeySet, Key]:
        """A new key, not signing yet (a key set's first key signs at once).

        Its secret is fresh unless given; a CDN's key needs it given (the CDN holds the
        public key, or the same secret).
        """
        kid = kid or self.unused_kid()
        if not KID_PATTERN.fullmatch(kid):
            raise KeySetError(_BAD_KID.format(kid=kid))
        if kid in self:
            raise KeySetError(f"key id {kid!r} exists already")
        if kid in self.retired_kids:
            raise KeySetError(f"key id {kid!r} was retired and is never used again (logs and alerts name it): "
                              f"choose another, e.g. {self.unused_kid()}")
        if secret is None and isinstance(algorithm, CDNKeyAlgorithm):
            raise KeySetError(f"a {algorithm.name} key comes from the CDN's side: give its secret "
                              f"({algorithm.secret_format})")
        key = Key(kid, generate_secret() if secret is None else secret, algorithm)
        problems = _key_problems(key)
        if problems:
            raise KeySetError(problems[0].message)
        if not self.keys:
            return KeySet((key,), kid, now, self.retired_kids), key
        # The current signer stays active explicitly, or the new (last) key would sign at once.
        since = self.active_since if self.active_kid else None
        return KeySet((*self.keys, key), self.active.kid, since, self.retired_kids), key

    def unused_kid(self) -> str:
        """The first ``kN`` that is neither a key nor retired."""
        return next(f"k{n}" for n in range(1, len(self.keys) + len(self.retired_kids) + 2)
                    if f"k{n}" not in self and f"k{n}" not in self.retired_kids)

    def activate(self, kid: str, *, now: int) -> KeySet:
        """``kid`` signs new links from ``now`` on."""
        self[kid]
        if kid == self.active_kid_or_last:
            raise KeySetError(f"{kid} already signs new links")
        return KeySet(self.keys, kid, now, self.retired_kids)

    def retire_safe_after(self, max_lifetime: int) -> int | None:
        """When every link signed by a key other than the active one has expired, if known."""
        return None if self.active_since is None else self.active_since + max_lifetime

    def retire(self, kid: str, *, now: int, max_lifetime: int, force: bool = False) -> KeySet:
        """Drop ``kid``; refused while its links may live, unless ``force`` (that revokes them)."""
        self[kid]
        if kid == self.active_kid_or_last:
            raise KeySetError(f"{kid} signs new links: activate another key first")
        safe_after = self.retire_safe_after(max_lifetime)
        if not force and (safe_after is None or now <= safe_after):
            when = "an unknown time" if safe_after is None else utc_iso(safe_after)
            raise KeySetError(
                f"links signed with {kid} may live until {when}; retire it after that, or pass --force to revoke them now"
            )
        return KeySet(tuple(key for key in self.keys if key.kid != kid), self.active_kid, self.active_since,
                      (*self.retired_kids, kid))

    def states(self, *, now: int, max_lifetime: int) -> list[tuple[Key, KeyState]]:
        """Each key and where it stands, oldest first."""
        safe_after = self.retire_safe_after(max_lifetime)
        active_kid = self.active_kid_or_last
        active_index = self.kids.index(active_kid) if active_kid in self else len(self.keys)
        states = []
        for index, key in enumerate(self.keys):
            if index > active_index:  # added after the active key
                state = KeyState.PENDING
            elif key.kid == active_kid:
                state = KeyState.ACTIVE
            elif safe_after is None:
                state = KeyState.UNKNOWN
            else:
                state = KeyState.RETIRABLE if now > safe_after else KeyState.IN_USE
            states.append((key, state))
        return states


def nginx_includes_directory(output: Path) -> Path:
    """The folder to write nginx's keys includes into: ``output``, or the folder of one of them.

    KeySetError for a ``.conf`` file of another name: nginx's rules include both files by
    name, from one folder, so a file elsewhere would never be read.
    """
    output = Path(output)
    names = [algorithm.nginx_include for algorithm in NGINX_ALGORITHMS]
    if output.name in names:
        return output.parent
    if output.suffix == ".conf" and not output.is_dir():
        raise KeySetError(f"{output} is a file name, but nginx's rules include {' and '.join(names)} by those names: "
                          f"give their folder instead, {output.parent}")
    return output


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


def _parse_key(entry: str, line_number: int) -> Key:
    kid, separator, value = entry.partition("=")
    if not separator:
        raise KeySetError(f"line {line_number}: expected 'kid=secret' or 'active: kid', got no '='")
    name, colon, secret = value.strip().partition(":")  # a CloudFront secret holds a ':' of its own
    if not colon:
        name, secret = "", name
    algorithm = ALGORITHMS.get(name) if colon else MD5
    if algorithm is None:
        raise KeySetError(f"line {line_number}: key {kid.strip()!r} names an unknown algorithm; use one of {list(ALGORITHMS)}")
    return Key(kid.strip(), secret, algorithm)


def _parse_active(entry: str, line_number: int) -> tuple[str, int | None]:
    words = entry[len("active:"):].split()
    if len(words) == 1:
        return words[0], None
    if len(words) == 3 and words[1] == "since" and words[2].isdigit():
        return words[0], int(words[2])
    raise KeySetError(f"line {line_number}: expected 'active: KID' or 'active: KID since UNIX_SECONDS'")


def _parse_retired(entry: str, line_number: int) -> list[str]:
    kids = entry[len("retired:"):].split()
    bad = [kid for kid in kids if not KID_PATTERN.fullmatch(kid)]
    if bad:
        raise KeySetError(f"line {line_number}: " + _BAD_KID.format(kid=bad[0]))
    return kids


def _key_problems(key: Key) -> list[KeyProblem]:
    problems = []
    if not KID_PATTERN.fullmatch(key.kid):
        problems.append(KeyProblem("bad-kid", _BAD_KID.format(kid=key.kid)))
    if isinstance(key.algorithm, CDNKeyAlgorithm):
        problem = key.algorithm.secret_problem(key.kid, key.secret)
        return problems + ([KeyProblem("bad-secret", problem)] if problem else [])
    if len(key.secret) < MIN_SECRET_LENGTH:
        problems.append(KeyProblem(
            "short-secret",
            f"the secret of key {key.kid!r} has {len(key.secret)} characters; at least "
            f"{MIN_SECRET_LENGTH} are required (make one with `python -m signing genkey`)",
        ))
    elif not SECRET_PATTERN.fullmatch(key.secret):
        problems.append(KeyProblem(
            "bad-secret",
            f"the secret of key {key.kid!r} has characters nginx cannot hold in its config; "
            "use A-Z a-z 0-9 and . _ ~ + / = - (make one with `python -m signing genkey`)",
        ))
    return problems
