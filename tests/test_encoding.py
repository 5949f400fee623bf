import base64
import hashlib

import pytest

from signing.encoding import nginx_base64url_decode
from signing.algorithms import md5_token as token_for

DIGEST = hashlib.md5(b"x").digest()
TOKEN = token_for(b"x").encode()


def test_token_is_unpadded_base64url_of_the_md5():
    assert TOKEN == base64.urlsafe_b64encode(DIGEST).rstrip(b"=")
    assert len(TOKEN) == 22 and b"=" not in TOKEN
    assert set(token_for(bytes(range(256)))) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


@pytest.mark.parametrize(
    "token, decoded",
    [
        (TOKEN, DIGEST),
        (TOKEN + b"==", DIGEST),  # padding is optional
        (TOKEN + b"=anything", DIGEST),  # decoding stops at the first '='
        (b"ab+d", None),  # '+' and '/' are not base64url
        (b"ab/d", None),
        (TOKEN[:21], None),  # 4n+1 characters cannot be base64
        (b"", b""),
        (b"ab!d", None),
    ],
)
def test_decode_follows_nginx(token, decoded):
    assert nginx_base64url_decode(token) == decoded


def test_decode_drops_the_last_characters_low_bits_like_nginx():
    # 22 characters carry 132 bits; nginx keeps 128, so the last character is malleable.
    last = TOKEN[-1:]
    alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    index = alphabet.index(last)
    sibling = alphabet[index ^ 0b0001 : (index ^ 0b0001) + 1]
    assert nginx_base64url_decode(TOKEN[:-1] + sibling) == DIGEST


def test_decode_agrees_with_the_standard_library_on_clean_input():
    for size in range(0, 40):
        data = bytes(range(size))
        assert nginx_base64url_decode(base64.urlsafe_b64encode(data).rstrip(b"=")) == data
