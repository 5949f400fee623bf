import pytest

from signing import MalformedRequest, UnsafePath
from signing.paths import check_signable_path, nginx_uri, quote_path

PREFIX = "/media/"


@pytest.mark.parametrize(
    "raw_path, uri",
    [  # The table of ../shared/NGINX_NOTES.md, checked against nginx in test_nginx_secure_link.py
        (b"/m/a%20b.jpg", b"/m/a b.jpg"),
        (b"/m/a+b.jpg", b"/m/a+b.jpg"),
        (b"/m/%E4%BD%A0.jpg", "/m/你.jpg".encode()),
        (b"/m/%e4%bd%a0.jpg", "/m/你.jpg".encode()),
        (b"/m/%FF", b"/m/\xff"),
        (b"/m/a%2Fb", b"/m/a/b"),
        (b"/m//b", b"/m/b"),
        (b"/m/./b", b"/m/b"),
        (b"/m/x/../a", b"/m/a"),
        (b"/m/x/%2e%2e/a", b"/m/a"),
        (b"/m/a%3Fb", b"/m/a?b"),
        (b"/m/a%23b", b"/m/a#b"),
        (b"/m/a%25b", b"/m/a%b"),
        (b"/m/a%3Bb", b"/m/a;b"),
        (b"/m/x/..", b"/m/"),
        (b"/m/x/.", b"/m/x/"),
    ],
)
def test_nginx_uri_decodes_and_normalises_like_nginx(raw_path, uri):
    assert nginx_uri(raw_path) == uri


@pytest.mark.parametrize("raw_path", [b"/m/a%00b", b"/m/a%zz", b"/m/a%2", b"/..", b"/m/../../etc/passwd", b"m/a"])
def test_nginx_uri_refuses_what_nginx_answers_with_400(raw_path):
    with pytest.raises(MalformedRequest):
        nginx_uri(raw_path)


@pytest.mark.parametrize("path", ["/media/a b.jpg", "/media/你好.txt", "/media/x/100%;?#+.txt", "/media/...txt"])
def test_signable_paths_survive_quoting_and_nginx_decoding(path):
    assert nginx_uri(quote_path(path).encode()) == check_signable_path(path, prefix=PREFIX)


@pytest.mark.parametrize(
    "path, reason",
    [
        ("/static/a.jpg", "not a file under"),
        ("/media/", "not a file under"),
        ("/mediaX/a.jpg", "not a file under"),
        ("/media/../etc/passwd", "'..' segment"),
        ("/media/a/./b", "'..' segment"),
        ("/media//b", "empty"),
        ("/media/dir/", "empty"),
        ("/media/a\0b", "control character"),
        ("/media/a\nb", "control character"),
        ("/media/a\x7fb", "control character"),
        ("/media/\udcff", "UTF-8"),
    ],
)
def test_unsafe_paths_are_refused_with_a_reason(path, reason):
    with pytest.raises(UnsafePath, match=reason):
        check_signable_path(path, prefix=PREFIX)


def test_unsafe_path_is_also_a_value_error():
    assert issubclass(UnsafePath, ValueError)
