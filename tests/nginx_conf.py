"""Read the shipped nginx configs and evaluate its maps and secure_link_md5 the way nginx does.

Just enough of nginx's config language for the contract test: directives, blocks, quoted
strings, ``map`` (exact keys match case-insensitively; regexes are tried in order, only on
a non-empty value; named captures become variables) and ``$var`` / ``${var}`` expansion.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from signing import KeySet
from signing.nginx.install import render_template, shipped_folder
from signing.nginx.folder_cookie import nginx_cookie
from signing.nginx.query import nginx_arg

_TOKEN = re.compile(r'\s+|#[^\n]*|"((?:[^"\\]|\\.)*)"|\'((?:[^\'\\]|\\.)*)\'|([{};])|([^\s{};"\']+)')
_VARIABLE = re.compile(r"\$(?:\{(\w+)\}|(\w+))")


@dataclass
class Directive:
    name: str
    args: list[str]
    block: list[Directive] | None = None


def parse(text: str) -> list[Directive]:
    """Parse nginx config text into nested directives."""
    tokens: list[tuple[str, bool]] = []  # (text, is_punctuation)
    for match in _TOKEN.finditer(text):
        quoted = match.group(1) if match.group(1) is not None else match.group(2)
        if quoted is not None:
            tokens.append((_unescape(quoted), False))
        elif match.group(3):
            tokens.append((match.group(3), True))
        elif match.group(4):
            tokens.append((_unescape(match.group(4)), False))
    directives, rest = _parse_block(tokens)
    assert not rest, "unbalanced braces"
    return directives


def _unescape(word: str) -> str:
    """What nginx's ngx_conf_read_token keeps of a word: \\" \\' \\\\ \\t \\r \\n are escapes;
    any other backslash stays (so a regex keeps its ``\\.``)."""
    return re.sub(r"\\([\"'\\trn])", lambda m: {"t": "\t", "r": "\r", "n": "\n"}.get(m.group(1), m.group(1)), word)


def _parse_block(tokens: list[tuple[str, bool]]) -> tuple[list[Directive], list[tuple[str, bool]]]:
    directives: list[Directive] = []
    words: list[str] = []
    while tokens:
        (text, punctuation), tokens = tokens[0], tokens[1:]
        if not punctuation:
            words.append(text)
        elif text == ";":
            directives.append(Directive(words[0], words[1:]))
            words = []
        elif text == "{":
            block, tokens = _parse_block(tokens)
            directives.append(Directive(words[0], words[1:], block))
            words = []
        else:  # "}"
            return directives, tokens
    return directives, tokens


def find(directives: list[Directive], name: str, *args: str) -> list[Directive]:
    """Every directive called ``name`` whose first arguments are ``args``, at any depth."""
    found = []
    for directive in directives:
        if directive.name == name and directive.args[: len(args)] == list(args):
            found.append(directive)
        found += find(directive.block or [], name, *args)
    return found


@dataclass
class Evaluator:
    """Expands variables for one request against the parsed config's maps."""

    config: list[Directive]
    key_set: KeySet
    uri: bytes
    query: bytes
    remote_addr: str
    expires: bytes
    captures: dict[str, bytes] = field(default_factory=dict)
    cookie_headers: tuple[bytes, ...] = ()

    def expand(self, template: str) -> bytes:
        out = b""
        position = 0
        for match in _VARIABLE.finditer(template):
            out += template[position : match.start()].encode()
            out += self.variable(match.group(1) or match.group(2))
            position = match.end()
        return out + template[position:].encode()

    def variable(self, name: str) -> bytes:
        if name.startswith("arg_"):
            return nginx_arg(self.query, name[4:].encode()) or b""
        if name.startswith("cookie_"):
            return nginx_cookie(list(self.cookie_headers), name[7:].encode()) or b""
        builtins = {"uri": self.uri, "args": self.query, "remote_addr": self.remote_addr.encode(),
                    "secure_link_expires": self.expires}
        if name in builtins:
            return builtins[name]
        if name in self.captures:
            return self.captures[name]
        maps = [m for m in find(self.config, "map") if m.args[1] == "$" + name]
        assert len(maps) == 1, f"no single map defines ${name}"
        return self._map(maps[0])

    def _map(self, directive: Directive) -> bytes:
        value = self.expand(directive.args[0])
        default = b""
        regexes: list[tuple[str, str]] = []
        for entry in directive.block or []:
            if entry.name == "include":  # a keys include: "kid" "secret"; for the keys of its algorithm
                for key in self.key_set:
                    if key.algorithm.nginx_include == entry.args[0] and value.lower() == key.kid.lower().encode():
                        return key.secret.encode()
            elif entry.name == "default":
                default = self.expand(entry.args[0])
            elif entry.name.startswith("~"):
                regexes.append((entry.name, entry.args[0]))
            elif value.lower() == entry.name.lower().encode():
                return self.expand(entry.args[0])
        for pattern, result in regexes if value else []:
            flags = re.IGNORECASE if pattern.startswith("~*") else 0
            python_pattern = re.sub(r"\(\?<(\w+)>", r"(?P<\1>", pattern.lstrip("~*"))
            match = re.search(python_pattern.encode(), value, flags)
            if match:
                self.captures.update({k: v or b"" for k, v in match.groupdict().items()})  # unmatched: "", as in nginx
                return self.expand(result)
        return default


def load_site(role: str) -> list[Directive]:
    """A role's whole site as the demo and the tests run it: its template rendered with stand-in
    values, the shipped files it includes spliced in (the generated ones, keys and Lua path, stay)."""
    values: dict[str, str | list[str]] = {"LISTEN": ["listen 127.0.0.1:8080;"], "ACCESS_LOGS": [], "EXTRA": [],
                                          "STATE_ROOT": "/srv/state"}
    if role == "origin":
        values |= {"APP_SERVERS": ["server 127.0.0.1:8000;"], "MEDIA_ROOT": "/srv/media", "EDGES": []}
    elif role == "origin-s3":
        values |= {"APP_SERVERS": ["server 127.0.0.1:8000;"], "EDGES": []}
    else:
        values |= {"ORIGIN_SERVERS": ["server 127.0.0.1:8080;"], "CACHE_DIR": "/srv/cache"}
    folder = shipped_folder()
    site = render_template(folder / "templates" / f"{role}-site.conf", values)
    return _splice_includes(parse(site), folder)


def load(path: Path, conf_dir: Path | None = None) -> list[Directive]:
    """Parse ``path``, splicing in the shipped includes (generated ones stay).

    As in nginx, a relative include is found in ``conf_dir``, the main config's folder:
    by default the folder of ``path``.
    """
    return _splice_includes(parse(path.read_text()), conf_dir or path.parent)


def _splice_includes(directives: list[Directive], folder: Path) -> list[Directive]:
    spliced: list[Directive] = []
    for directive in directives:
        if directive.name == "include" and (folder / directive.args[0]).is_file():
            spliced += load(folder / directive.args[0], folder)
        elif directive.block is not None:
            spliced.append(Directive(directive.name, directive.args, _splice_includes(directive.block, folder)))
        else:
            spliced.append(directive)
    return spliced
