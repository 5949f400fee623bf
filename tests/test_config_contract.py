"""Every nginx role and the signer must hash the same bytes: config drift cannot land.

The origin and the edge are read as they run, each a site of nginx/templates/ with the
shipped files it includes spliced in (the role file, nginx/secure_link.conf or
nginx/edge.conf, and the secure_link/ folder); their maps and secure_link_md5 expression are
evaluated (tests/nginx_conf.py) for each kind of link and must give the token the signer put
in the link. The rules exist once: neither role file may hold a copy of them.
"""

from __future__ import annotations

import re

import pytest

from harness.nginx import EDGE_CONF, NGINX_DIR, SECURE_LINK_CONF
from signing import HMAC_SHA256, Key, KeySet, SecureLinkSigner, content_disposition, nginx_uri
from signing.algorithms import hmac_token, md5_token as token_for
from signing.nginx.directory import directory_pattern, parse_directory_uri
from signing.nginx.query import nginx_arg
from tests.nginx_conf import Evaluator, find, load, load_site, parse

ROLES = {"origin": SECURE_LINK_CONF, "origin-s3": NGINX_DIR / "secure_link_s3.conf", "edge": EDGE_CONF}
HTTP_INCLUDES = {"origin": "origin.conf", "origin-s3": "origin_s3.conf", "edge": "edge.conf"}
SNIPPETS = SECURE_LINK_CONF.parent / "secure_link"
CONFIG = load_site("origin")
KEYS = KeySet((Key("k1", "a" * 32), Key("k2", "b" * 43)))
SIGNER = SecureLinkSigner(KEYS, clock=lambda: 1_800_000_000)


@pytest.fixture(params=list(ROLES), autouse=True)
def role(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test below runs once per role, against that role's config."""
    monkeypatch.setitem(globals(), "CONFIG", load_site(request.param))
    return str(request.param)


def media_location():
    locations = find(CONFIG, "location", SIGNER.prefix)
    assert len(locations) == 1, f"exactly one 'location {SIGNER.prefix}' must exist"
    return locations[0]


def evaluate(url: str, remote_addr: str = "192.0.2.7") -> tuple[str, Evaluator]:
    raw_path, _, query = url.encode().partition(b"?")
    secure_link = find(media_location().block, "secure_link")[0].args[0]
    assert secure_link == "$arg_md5,$arg_expires"
    evaluator = Evaluator(CONFIG, KEYS, nginx_uri(raw_path), query, remote_addr, nginx_arg(query, b"expires") or b"")
    expression = find(media_location().block, "secure_link_md5")[0].args[0]
    return token_for(evaluator.expand(expression)), evaluator


def test_the_rules_exist_once_and_every_role_includes_them(role):
    own = parse(ROLES[role].read_text())  # the role file alone, without its includes
    assert find(own, "map") == [] and find(own, "secure_link_md5") == [] and find(own, "secure_link") == []
    assert find(own, "location", "~") == []  # the directory pattern lives in secure_link/server/directory.conf only
    for shared in ("secure_link/server/common.conf", "secure_link/server/directory.conf", "secure_link/server/folder.conf"):
        assert [d.args for d in find(own, "include", shared)] == [[shared]]
    media = find(own, "location", SIGNER.prefix)[0]
    assert media.block[0].name == "include" and media.block[0].args == ["secure_link/location/check.conf"]
    http = load(SNIPPETS / "http" / HTTP_INCLUDES[role], NGINX_DIR)  # what the role's http { } includes
    for shared in ("secure_link/http/rules.conf", "secure_link/http/lua.conf"):
        assert len(parse((SNIPPETS / "http" / shared.rpartition("/")[2]).read_text())) > 0
        assert [d.args for d in find(parse((SNIPPETS / "http" / HTTP_INCLUDES[role]).read_text()), "include", shared)] \
            in ([[shared]], [])  # the bucket origin's includes them through http/origin.conf
    assert len(find(http, "map", "$arg_kid", "$secure_link_secret")) == 1
    assert len(find(CONFIG, "map", "$arg_kid", "$secure_link_secret")) == 1  # the whole site: the rules once


LINKS = {
    "plain": dict(),
    "bound to IPv4": dict(client_ip="192.0.2.7"),
    "bound to IPv6": dict(client_ip="2001:db8::7"),
    "attachment name": dict(filename="你 好;\".txt"),
    "inline name": dict(filename="a.jpg", disposition="inline"),
    "inline, no name": dict(disposition="inline"),
    "everything": dict(client_ip="192.0.2.7", filename="x|y.bin", disposition="attachment"),
}


@pytest.mark.parametrize("kind", list(LINKS))
@pytest.mark.parametrize("path", ["/media/a.jpg", "/media/dir/a b+c%;?#|.bin", "/media/你好.txt"])
def test_config_hashes_exactly_what_the_signer_signs(kind: str, path: str):
    link = SIGNER.sign(path, ttl=60, **LINKS[kind])
    token, evaluator = evaluate(link.url, remote_addr="2001:db8::7" if "IPv6" in kind else "192.0.2.7")
    assert f"md5={token}&" in link.url


@pytest.mark.parametrize("kind", list(LINKS))
def test_config_builds_the_content_disposition_the_library_builds(kind: str):
    options = LINKS[kind]
    link = SIGNER.sign("/media/a.jpg", ttl=60, **options)
    _, evaluator = evaluate(link.url)
    expected = content_disposition(*_disposition_and_name(link.url)) or ""
    assert evaluator.variable("secure_link_content_disposition").decode() == expected


def _disposition_and_name(url: str) -> tuple[str, str]:
    query = url.encode().partition(b"?")[2]
    name, ascii_name = (nginx_arg(query, b"filename") or b"").decode(), (nginx_arg(query, b"ascii") or b"").decode()
    return (nginx_arg(query, b"disposition") or b"").decode(), f"{name}:{ascii_name}" if ascii_name else name


def test_content_disposition_header_comes_from_the_signed_map(role):
    headers = find(media_location().block, "add_header", "Content-Disposition")
    if role == "origin":
        assert [h.args for h in headers] == [["Content-Disposition", "$secure_link_content_disposition"]]
        return
    # The edge and the bucket origin read it before the query (the token) is dropped from their fetch.
    copy = "$secure_link_edge_disposition" if role == "edge" else "$secure_link_fetch_disposition"
    assert [h.args for h in headers] == [["Content-Disposition", copy]]
    copies = find(media_location().block, "set", copy)
    assert [c.args for c in copies] == [[copy, "$secure_link_content_disposition"]]


def test_links_are_refused_in_order_signature_cookie_expiry_revocation_start_then_counted():
    block = media_location().block
    checks = [(d.args, [(r.name, r.args) for r in d.block]) for d in block if d.name == "if"]
    assert checks == [
        # A network binding's client field is computed before any check reads it (the HMAC one too).
        (["($secure_link_client_length)"], [("set_by_lua", ["$secure_link_client_network", NETWORK_CALL, "$remote_addr",
                                                              "$secure_link_client_length"])]),
        (["($secure_link_algorithm", "=", "hmac", ")"], [("set_by_lua", HMAC_CHECK)]),
        (["($secure_link_status", "=", "", ")"], [("return", ["403"])]),
        (["($secure_link_status", "=", "cookie", ")"], [("rewrite", ["^", "/_secure_link/folder$uri", "last"])]),
        (["($secure_link_status", "=", "0", ")"], [("return", ["410"])]),
        (["(-f", "$secure_link_revoked_file)"], [("return", ["403"])]),
        (["($secure_link_nb)"], [("set_by_lua", ["$secure_link_opens_at", NOT_BEFORE_CALL, "$secure_link_nb"])]),
        (["($secure_link_opens_at)"],
         [("rewrite", ["^", "/_secure_link_errors/not_yet_valid.$secure_link_error_format", "last"])]),
        (["($secure_link_limit)"], [("rewrite", ["(?s)^/media/(.*)\\z",
                                                 "/_secure_link/limited/$secure_link_id/$secure_link_limit/$arg_expires/$1",
                                                 "last"])]),
    ]


# The modules' calls: found on the lua_package_path of secure_link_lua.conf, loaded when nginx
# reads its config (secure_link/http/lua.conf).
HMAC_CALL = 'return (package.loaded["secure_link.lua.hmac"] or require("secure_link.lua.hmac")).status(ngx.arg[1])'
NOT_BEFORE_CALL = ('return (package.loaded["secure_link.lua.not_before"] or require("secure_link.lua.not_before"))'
                   '.opens_at(ngx.arg[1])')
HMAC_CHECK = ["$secure_link_hmac", HMAC_CALL, "$secure_link_hmac_secret|$arg_hmac&$secure_link_hmac_head$uri"]


def lua_check(block, status_variable: str) -> str:
    """The "SECRET|TOKEN&MESSAGE" argument a location hands secure_link/lua/hmac.lua for ``status_variable``."""
    (found,) = [d for d in find(block, "set_by_lua") if d.args[0] == status_variable]
    assert found.args[1] == HMAC_CALL
    return found.args[2]


def split_lua_check(value: bytes) -> tuple[bytes, bytes, bytes]:
    """As secure_link/lua/hmac.lua reads it: the secret up to the first "|", the token up to the next "&"."""
    secret, _, rest = value.partition(b"|")
    token, _, message = rest.partition(b"&")
    return secret, token, message


def test_the_link_fields_map_reads_what_the_verifier_reads():
    from signing.nginx.signed_string import LINK_ID_PATTERN
    from signing.nginx.verifier import _LINK_FIELDS

    entries = map_entries("$secure_link_link_fields")
    (pattern,) = [key for key in entries if key.startswith("~")]
    assert pattern == "~^" + _LINK_FIELDS.pattern.decode().replace("(?P<", "(?<") + "$"  # PCRE's spelling
    assert f"(?P<secure_link_id>{LINK_ID_PATTERN.pattern}):" in _LINK_FIELDS.pattern.decode()
    assert entries[pattern] == ["$secure_link_id|$secure_link_nb|$secure_link_limit|"] and entries["::"] == [""]
    assert entries["default"] == ["!"]
    id_alone = map_entries("$secure_link_id_field")  # a link without nb and limit: the same id, nothing else
    assert id_alone == {"": [""], f"~^(?<secure_link_id>{LINK_ID_PATTERN.pattern})$": ["$secure_link_id|||"],
                        "default": ["!"]}


def test_the_options_gate_names_every_optional_argument_the_rules_read():
    """$secure_link_options is "" only when none of the optional $arg_ can be non-empty: its pattern
    names every argument the rules read besides those every link carries, as ngx_http_arg finds them."""
    rules = (SNIPPETS / "http" / "rules.conf").read_text() + (SNIPPETS / "location" / "check.conf").read_text()
    code = "\n".join(line.split("#", 1)[0] for line in rules.splitlines())
    optional = set(re.findall(r"\$arg_(\w+)", code)) - {"md5", "expires", "kid", "id"}
    (pattern,) = [key for key in map_entries("$secure_link_options") if key.startswith("~")]
    names = re.fullmatch(r"~\*\(\?:\^\|&\)\(\?:([a-z|]+)\)=", pattern)
    assert names is not None and set(names.group(1).split("|")) == optional
    assert map_entries("$secure_link_options")["default"] == [""]
    for gated in ("$secure_link_client", "$secure_link_disposition", "$secure_link_filename"):
        assert map_entries(gated) == {"": [""], "default": [gated + "_argument"]}
    assert map_entries("$secure_link_fields") == {"": ["$secure_link_id_field"], "default": ["$secure_link_link_fields"]}


def test_logs_name_the_link_by_id_and_never_log_the_query():
    rules = (SNIPPETS / "http" / "rules.conf").read_text()
    formats = dict(re.findall(r"^log_format (\w+) (.*?);$", rules, flags=re.M | re.S))
    assert set(formats) == {"secure_link", "secure_link_downloads", "secure_link_failures"}
    for text in formats.values():
        assert "$request" not in text.replace("$request_method", "").replace("$request_time", "") and "$args" not in text
        assert "$arg_" not in text and "$uri" not in text and "$http_referer" not in text
    assert "$secure_link_id" in formats["secure_link"] and "$secure_link_id" in formats["secure_link_downloads"]


QUIET = ["stderr", "emerg"]  # secure_link/location/quiet_errors.conf: no error-log line in a request


def test_every_location_a_token_can_reach_writes_no_error_log_line(role):
    """nginx quotes the request line, token and all, with every failure it logs: only a location that
    answers without a file or an upstream, or that only edges reach (by path), may log errors."""
    answers_only = {"return", "default_type", "add_header", "internal", "charset"}
    for location in find(CONFIG, "location"):
        levels = [directive.args for directive in find(location.block or [], "error_log")]
        if levels:
            assert levels == [QUIET], location.args
            continue
        names = {directive.name for directive in location.block or []}
        edges_only = role != "edge" and location.args[0].startswith("/_edge/")
        assert names <= answers_only or edges_only, f"location {' '.join(location.args)} logs errors with the token"
    assert find(parse((SNIPPETS / "location" / "quiet_errors.conf").read_text()), "error_log")[0].args == QUIET


def map_entries(variable: str) -> dict[str, list[str]]:
    (found,) = [m for m in find(CONFIG, "map") if m.args[1] == variable]
    return {entry.name: entry.args for entry in found.block or []}


def test_the_link_names_its_algorithm_and_md5_needs_an_md5_key():
    assert map_entries("$secure_link_algorithm") == {"": ["md5"], "default": ["$secure_link_algorithm_argument"]}
    assert map_entries("$secure_link_algorithm_argument") == {"": ["md5"], "default": ["hmac"]}
    assert map_entries("$secure_link_status") == {"md5": ["$secure_link_md5_status"], "hmac": ["$secure_link_hmac"]}
    # No MD5 key in the query: a folder cookie, if there is one, decides (secure_link/folder.conf).
    assert map_entries("$secure_link_md5_status") == {"": ["$secure_link_cookie_route"], "default": ["$secure_link"]}
    assert map_entries("$secure_link_cookie_route") == {"": [""], "default": ["cookie"]}
    assert map_entries("$secure_link_dir_status") == {"": ["$secure_link_dir_md5_status"], "default": ["$secure_link_dir_hmac"]}
    assert map_entries("$secure_link_dir_md5_status") == {"": [""], "default": ["$secure_link"]}
    assert map_entries("$secure_link_secret") == {"default": [""], "include": ["secure_link_keys.conf"]}
    assert map_entries("$secure_link_hmac_secret") == {"default": [""], "include": ["secure_link_hmac_keys.conf"]}


NGINX_CAPTURE_NAMES = {"prefix": "secure_link_dir", "below": "secure_link_dir_below", "kid": "secure_link_dir_kid",
                       "expires": "secure_link_dir_expires", "ip": "secure_link_dir_ip",
                       "length": "secure_link_dir_length", "id": "secure_link_dir_id",
                       "nb": "secure_link_dir_nb", "token": "secure_link_dir_token", "file": "secure_link_dir_file"}


def directory_location():
    (location,) = [d for d in find(CONFIG, "location", "~") if "secure_link_dir" in d.args[1]]
    return location


NETWORK_CALL = ('return (package.loaded["secure_link.lua.network"] or require("secure_link.lua.network"))'
                '.network(ngx.arg[1], ngx.arg[2])')


def GRANT_STATE_CHECKS(not_before: str) -> list[tuple[list[str], list[tuple[str, list[str]]]]]:
    """What a directory link's and a folder cookie's check does once the token verified: as check.conf
    does for a file link, a revoked id is refused, and a start time not yet reached."""
    opens_at = ('return (package.loaded["secure_link.lua.not_before"] or require("secure_link.lua.not_before"))'
                '.opens_at(ngx.arg[1])')
    return [(["(-f", "$secure_link_revoked_file)"], [("return", ["403"])]),
            ([f"({not_before})"], [("set_by_lua", ["$secure_link_opens_at", opens_at, not_before])]),
            (["($secure_link_opens_at)"], [("rewrite", ["^", "/_secure_link_errors/not_yet_valid.$secure_link_error_format",
                                                         "last"])])]


def test_the_directory_check_refuses_a_revoked_grant_and_one_not_yet_open():
    block = directory_location().block
    checks = [(d.args, [(r.name, r.args) for r in d.block]) for d in block if d.name == "if"]
    assert checks[-3:] == GRANT_STATE_CHECKS("$secure_link_dir_nb")
    assert [d.args for d in block if d.name == "set"] == [["$secure_link_id", "$secure_link_dir_id"]]
    assert map_entries("$secure_link_dir_fields") == {"": [""], "default": ["$secure_link_dir_id|$secure_link_dir_nb||"]}


def test_the_directory_location_is_the_python_pattern():
    python_pattern = re.sub(r"\(\?P<(\w+)>", lambda m: f"(?<{NGINX_CAPTURE_NAMES[m.group(1)]}>", directory_pattern(SIGNER.prefix))
    assert directory_location().args[1] == python_pattern


@pytest.mark.parametrize("not_before", [None, 1_700_000_000])
@pytest.mark.parametrize("bound", [False, True])
@pytest.mark.parametrize("prefix", ["/media/videos/42/", "/media/", "/media/a b/你好/"])
def test_config_hashes_exactly_what_the_directory_signer_signs(prefix: str, bound: bool, not_before: int | None):
    directory = SIGNER.sign_directory(prefix, ttl=60, client_ip="192.0.2.7" if bound else None, not_before=not_before)
    uri = nginx_uri(directory.url_for("720p/seg 1.ts").encode())
    parts = parse_directory_uri(uri, SIGNER.prefix)
    assert parts is not None and parts["prefix"] == prefix.encode()
    evaluator = Evaluator(CONFIG, KEYS, uri, b"", "192.0.2.7", b"")
    evaluator.captures.update({NGINX_CAPTURE_NAMES[name]: value for name, value in parts.items()})
    block = directory_location().block
    assert find(block, "secure_link")[0].args == ["$secure_link_dir_token,$secure_link_dir_expires"]
    expression = find(block, "secure_link_md5")[0].args[0].replace("$secure_link_dir_expires", parts["expires"].decode())
    assert token_for(evaluator.expand(expression)) == parts["token"].decode()


def test_unknown_key_id_maps_to_an_empty_secret():
    assert evaluate(SIGNER.sign("/media/a.jpg", ttl=60).url.replace("kid=k2", "kid=zz"))[1].variable(
        "secure_link_secret"
    ) == b""


def test_internal_locations_are_internal(role):
    (directory,) = find(CONFIG, "location", "/_secure_link/directory/")
    assert directory.block[0].name == "internal"  # directory links reach it only through their check
    if role == "edge":  # it serves no file of its own and never exposes the origin's fetch location
        assert find(CONFIG, "location", "/_protected/media/") == []
        assert [d.args for d in find(CONFIG, "location", "/_edge/")[0].block] == [["404"]]
        return
    location = find(CONFIG, "location", "/_protected/media/")
    assert len(location) == 1
    if role == "origin-s3":  # the object of the same key, through the origin's cache
        assert [d.name for d in location[0].block][:3] == ["internal", "error_log", "rewrite"]
        assert location[0].block[2].args == ["(?s)^/_protected/media/(.*)\\z", "/$1?", "break"]
        return
    assert [d.name for d in location[0].block] == ["internal", "error_log", "alias"]
    assert location[0].block[2].args == media_location_alias()


def media_location_alias() -> list[str]:
    return find(media_location().block, "alias")[0].args


HMAC_KEYS = KeySet((Key("h1", "c" * 43, HMAC_SHA256),))
HMAC_SIGNER = SecureLinkSigner(HMAC_KEYS, clock=lambda: 1_800_000_000)


@pytest.mark.parametrize("kind", list(LINKS))
def test_config_builds_the_hmac_message_the_signer_signs(kind: str):
    link = HMAC_SIGNER.sign("/media/dir/a b+c%;?#|.bin", ttl=60, **LINKS[kind])
    raw_path, _, query = link.url.encode().partition(b"?")
    remote_addr = "2001:db8::7" if "IPv6" in kind else "192.0.2.7"
    evaluator = Evaluator(CONFIG, HMAC_KEYS, nginx_uri(raw_path), query, remote_addr, b"")
    assert evaluator.variable("secure_link_secret") == b""
    secret, token, message = split_lua_check(evaluator.expand(lua_check(media_location().block, "$secure_link_hmac")))
    assert secret == b"c" * 43 and token == nginx_arg(query, b"hmac")
    assert token == hmac_token(secret, message).encode()


def test_config_builds_the_directory_hmac_message_the_signer_signs():
    directory = HMAC_SIGNER.sign_directory("/media/videos/42/", ttl=60, client_ip="192.0.2.7")
    uri = nginx_uri(directory.url_for("seg.ts").encode())
    parts = parse_directory_uri(uri, HMAC_SIGNER.prefix)
    assert parts is not None
    evaluator = Evaluator(CONFIG, HMAC_KEYS, uri, b"", "192.0.2.7", b"")
    evaluator.captures.update({NGINX_CAPTURE_NAMES[name]: value for name, value in parts.items()})
    check = lua_check(directory_location().block, "$secure_link_dir_hmac")
    secret, token, message = split_lua_check(evaluator.expand(check))
    assert secret == b"c" * 43 and token == parts["token"] == hmac_token(secret, message).encode()


COOKIE_CAPTURE_NAMES = {"folder": "secure_link_cookie_folder", "kid": "secure_link_cookie_kid",
                        "expires": "secure_link_cookie_expires", "ip": "secure_link_cookie_ip",
                        "length": "secure_link_cookie_length",
                        "id": "secure_link_cookie_id", "nb": "secure_link_cookie_nb",
                        "token": "secure_link_cookie_signature"}


def folder_location():
    (location,) = find(CONFIG, "location", "/_secure_link/folder/")
    return location


def test_the_folder_cookie_map_is_the_python_pattern():
    from signing.nginx.folder_cookie import folder_cookie_pattern

    entries = map_entries("$secure_link_cookie_token")
    python_pattern = re.sub(r"\(\?P<(\w+)>", lambda m: f"(?<{COOKIE_CAPTURE_NAMES[m.group(1)]}>",
                            folder_cookie_pattern(SIGNER.prefix))
    assert entries == {"~" + python_pattern: ["$secure_link_cookie_signature"], "default": [""]}
    (map_directive,) = [m for m in find(CONFIG, "map") if m.args[1] == "$secure_link_cookie_token"]
    assert map_directive.args[0] == "$cookie_secure_link_folder"


def test_the_folder_check_is_anchored_at_the_signed_folder():
    # The request's path must begin with the signed folder: a backreference, anchored at the start.
    (map_directive,) = [m for m in find(CONFIG, "map") if m.args[1] == "$secure_link_cookie_in_folder"]
    assert map_directive.args[0] == "$secure_link_cookie_folder|$uri"
    assert map_entries("$secure_link_cookie_in_folder") == {
        "~^(?<secure_link_cookie_granted>/media/[^|]*)\\|/_secure_link/folder\\k<secure_link_cookie_granted>":
            ["$secure_link_cookie_check"],
        "default": [""],
    }
    assert map_entries("$secure_link_cookie_status") == {"": [""], "default": ["$secure_link_cookie_in_folder"]}
    assert map_entries("$secure_link_cookie_check") == {"": ["$secure_link_cookie_md5_status"],
                                                        "default": ["$secure_link_cookie_hmac"]}
    # The HMAC key is read after the token, whose pattern sets the kid it is looked up by.
    assert map_entries("$secure_link_cookie_hmac_key") == {"": [""], "default": ["$secure_link_cookie_hmac_secret"]}
    (key_map,) = [m for m in find(CONFIG, "map") if m.args[1] == "$secure_link_cookie_hmac_key"]
    assert key_map.args[0] == "$secure_link_cookie_token"


def test_the_folder_check_is_internal_and_hands_over_to_the_roles_directory_location():
    block = folder_location().block
    assert block[0].name == "internal"
    checks = [(d.args, [(r.name, r.args) for r in d.block]) for d in block if d.name == "if"]
    assert checks == [(["($secure_link_cookie_length)"], [("set_by_lua", [
                          "$secure_link_cookie_network", NETWORK_CALL, "$remote_addr", "$secure_link_cookie_length"])]),
                      (["($secure_link_cookie_hmac_key)"], [("set_by_lua", [
                          "$secure_link_cookie_hmac", HMAC_CALL, "$secure_link_cookie_hmac_key|$secure_link_cookie_token&"
                          "$secure_link_cookie_hmac_head$secure_link_cookie_fields$secure_link_cookie_folder"])]),
                      (["($secure_link_cookie_status", "=", "", ")"], [("return", ["403"])]),
                      (["($secure_link_cookie_status", "=", "0", ")"], [("return", ["410"])]),
                      *GRANT_STATE_CHECKS("$secure_link_cookie_nb")]
    # The grant's id names its revocation file and its log lines; read through the token, whose pattern sets it.
    assert [d.args for d in block if d.name == "set"] == [["$secure_link_id", "$secure_link_cookie_link_id"]]
    assert map_entries("$secure_link_cookie_link_id") == {"": [""], "default": ["$secure_link_cookie_id"]}
    assert [d for d in block if d.name == "rewrite"][0].args == ["(?s)^/_secure_link/folder/media/(.*)\\z", "/_secure_link/directory/$1", "last"]
    assert [(d.name, d.args) for d in block][-1] == ("return", ["404"])  # nothing falls through to a root


@pytest.mark.parametrize("not_before", [None, 1_700_000_000])
@pytest.mark.parametrize("bound", [False, True])
@pytest.mark.parametrize("folder", ["/media/videos/42/", "/media/", "/media/a.b/c~d_e-f/"])
def test_config_hashes_exactly_what_the_folder_cookie_signer_signs(folder: str, bound: bool, not_before: int | None):
    from signing.nginx.folder_cookie import COOKIE_NAME, parse_folder_cookie

    grant = SIGNER.sign_folder_cookie(folder, ttl=60, client_ip="192.0.2.7" if bound else None, not_before=not_before)
    parts = parse_folder_cookie(grant.cookies[COOKIE_NAME].encode(), SIGNER.prefix)
    assert parts is not None and parts["folder"] == folder.encode() and grant.path == folder
    cookie = f"{COOKIE_NAME}={grant.cookies[COOKIE_NAME]}".encode()
    evaluator = Evaluator(CONFIG, KEYS, b"/_secure_link/folder" + folder.encode() + b"seg.ts", b"", "192.0.2.7", b"",
                          cookie_headers=(cookie,))  # the cookie map's pattern sets the captures
    assert evaluator.expand("$secure_link_cookie_token") == parts["token"]
    assert {name: evaluator.captures.get(COOKIE_CAPTURE_NAMES[name], b"") for name in parts} == parts
    block = folder_location().block
    assert find(block, "secure_link")[0].args == ["$secure_link_cookie_token,$secure_link_cookie_expires"]
    assert token_for(evaluator.expand(find(block, "secure_link_md5")[0].args[0])) == parts["token"].decode()


def test_config_builds_the_folder_cookie_hmac_message_the_signer_signs():
    from signing.nginx.folder_cookie import COOKIE_NAME, parse_folder_cookie

    grant = HMAC_SIGNER.sign_folder_cookie("/media/videos/42/", ttl=60, client_ip="192.0.2.7")
    parts = parse_folder_cookie(grant.cookies[COOKIE_NAME].encode(), HMAC_SIGNER.prefix)
    assert parts is not None
    cookie = f"{COOKIE_NAME}={grant.cookies[COOKIE_NAME]}".encode()
    evaluator = Evaluator(CONFIG, HMAC_KEYS, b"/_secure_link/folder/media/videos/42/seg.ts", b"", "192.0.2.7", b"",
                          cookie_headers=(cookie,))  # the cookie map's pattern sets the captures
    check = lua_check(folder_location().block, "$secure_link_cookie_hmac")
    secret, token, message = split_lua_check(evaluator.expand(check))
    assert secret == b"c" * 43 and token == parts["token"] == hmac_token(secret, message).encode()


def test_an_edge_never_sends_the_clients_cookies_on_nor_keys_its_cache_on_them(role):
    if role != "edge":
        return
    fetch_rules = load(SNIPPETS / "location" / "edge_fetch.conf", SNIPPETS.parent)
    assert [d.args for d in find(fetch_rules, "proxy_cache_key")] == [["$uri$slice_range"]]
    origin_rules = load(SNIPPETS / "location" / "edge_origin.conf", SNIPPETS.parent)
    assert ["Cookie", ""] in [d.args for d in find(origin_rules, "proxy_set_header")]


def test_both_origins_count_limited_links_in_the_same_location_and_rewrite_every_fetch_to_the_key():
    """The bucket origin's counting location is the disk origin's (the pattern check.conf rewrites
    to), and each of its file locations drops the query and names the object key alone."""
    disk = parse((SNIPPETS / "server" / "origin_limited.conf").read_text())
    bucket = parse((SNIPPETS / "server" / "origin_s3_limited.conf").read_text())
    assert find(disk, "location")[0].args == find(bucket, "location")[0].args
    site = load_site("origin-s3")
    fetching = [d for d in find(site, "location") if find(d.block or [], "proxy_pass", "http://secure_link_s3_signer")]
    assert len(fetching) == 5  # /media/, the limited, directory and protected locations, the edges' fetches
    for location in fetching:
        rewrite = find(location.block, "rewrite")[-1]  # the earlier ones (from check.conf) leave for other locations
        assert rewrite.args[1].startswith("/$") and rewrite.args[1].endswith("?") and rewrite.args[2] == "break"
        assert find(location.block, "proxy_cache_key")[0].args == ["$uri$slice_range"]
        assert find(location.block, "proxy_pass_request_headers")[0].args == ["off"]  # no cookie, no token
        counting = location.args[0] == "~"  # the limited links' location: no page may take its request away
        assert (find(location.block, "error_page", "404") == []) == counting
        assert [d.args for d in find(location.block, "proxy_set_header", "X-Secure-Link-Gate")] == \
            [["X-Secure-Link-Gate", "$secure_link_s3_gate"]]


def test_the_origins_counter_client_asks_the_paths_and_token_the_app_serves():
    """downloads.lua and the app agree on the counter's endpoints, its parameters and its answers;
    origins read the counter's include, edges pass their request id to origins under one name."""
    from signing.fleet.protocol import SETTLE_PATH, TAKE_PATH, TOKEN_HEADER

    lua = (SNIPPETS / "lua" / "downloads.lua").read_text()
    assert f'"{TAKE_PATH}?id="' in lua and f'"{SETTLE_PATH}?id="' in lua
    assert f'"\\r\\n{TOKEN_HEADER}: Bearer "' in lua
    from signing.django.counting import Outcome, Taken

    for answer in (Taken.COUNTED, Taken.RESUMED):
        assert f'"{answer.value}"' in lua
    for outcome in Outcome:
        assert re.search(rf'outcome(, extra)? = "{outcome.value}"', lua), outcome
    for parameter in ("&limit=", "&expires=", "&start=", "&head=1", "&request=", "&took=", "&outcome=", "&sent="):
        assert parameter in lua
    assert "include secure_link_counter.conf;" in (SNIPPETS / "http" / "origin.conf").read_text()
    edge = parse(EDGE_CONF.read_text())
    limited = [d for d in find(edge, "location") if d.args == ["/_secure_link/limited/"]][0]
    header = find(limited.block, "proxy_set_header", "X-Secure-Link-Request")[0].args[1]
    origin_edges = (SNIPPETS / "server" / "origin_edges.conf").read_text()
    assert header == "$request_id" and "set $secure_link_take_request $http_x_secure_link_request;" in origin_edges
