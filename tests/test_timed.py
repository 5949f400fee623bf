import pytest

from signing import BadSignature, KeySet, LinkExpired, TimedTokenSigner

NOW = 1_800_000_000
KEYS = KeySet.parse("k1=" + "x" * 43)


def make_signer(now: float = NOW, key_set: KeySet = KEYS, **options) -> TimedTokenSigner:
    options.setdefault("salt", "share")
    return TimedTokenSigner(key_set, clock=lambda: now, **options)


def test_token_round_trip_returns_its_expiry():
    token, expires = make_signer().sign("image:42", ttl=600)
    assert expires == NOW + 600
    assert make_signer(now=NOW + 600).verify(token, subject="image:42") == NOW + 600


def test_token_expires_strictly_after_its_expiry():
    token, _ = make_signer().sign("image:42", ttl=600)
    with pytest.raises(LinkExpired) as caught:
        make_signer(now=NOW + 601).verify(token, subject="image:42")
    assert caught.value.expires == NOW + 600


@pytest.mark.parametrize(
    "tamper",
    [
        lambda token: token[:-1] + ("A" if token[-1] != "A" else "B"),
        lambda token: "A" + token[1:],
        lambda token: token.split(".")[0],
        lambda token: "",
        lambda token: "not-a-token",
    ],
)
def test_tampered_or_malformed_tokens_are_bad_signatures(tamper):
    token, _ = make_signer().sign("image:42", ttl=600)
    with pytest.raises(BadSignature) as caught:
        make_signer().verify(tamper(token), subject="image:42")
    assert not isinstance(caught.value, LinkExpired)


def test_token_is_bound_to_its_subject():
    token, _ = make_signer().sign("image:42", ttl=600)
    with pytest.raises(BadSignature, match="grants 'image:42', not 'image:43'"):
        make_signer().verify(token, subject="image:43")


def test_token_is_bound_to_its_purpose():
    token, _ = make_signer(salt="share").sign("image:42", ttl=600)
    with pytest.raises(BadSignature):
        make_signer(salt="password-reset").verify(token, subject="image:42")


def test_rotation_signs_with_the_newest_and_accepts_all():
    old_token, _ = make_signer(key_set=KeySet.parse("old=" + "o" * 43)).sign("image:1", ttl=60)
    rotated = make_signer(key_set=KeySet.parse("old=" + "o" * 43 + ",new=" + "n" * 43))
    assert rotated.verify(old_token, subject="image:1") == NOW + 60
    new_token, _ = rotated.sign("image:1", ttl=60)
    with pytest.raises(BadSignature):
        make_signer(key_set=KeySet.parse("old=" + "o" * 43)).verify(new_token, subject="image:1")


@pytest.mark.parametrize("options, message", [({"key_set": KeySet()}, "no signing keys"), ({"salt": ""}, "salt")])
def test_configuration_mistakes_are_value_errors(options, message):
    with pytest.raises(ValueError, match=message):
        make_signer(**options)


@pytest.mark.parametrize("ttl", [0, -1, True])
def test_bad_ttl_is_a_value_error(ttl):
    with pytest.raises(ValueError, match="ttl"):
        make_signer().sign("image:1", ttl=ttl)


def test_repr_names_the_purpose_not_the_secret():
    assert repr(make_signer()) == "<TimedTokenSigner salt='share'>"
