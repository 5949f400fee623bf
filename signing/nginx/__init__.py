"""nginx's own links: the signed string, the signer, the verifier (nginx's check in Python,
byte for byte), directory links, folder cookies, Content-Disposition, the per-link state nginx
reads, and the nginx folder this package ships (:mod:`signing.nginx.install`)."""

from .disposition import content_disposition as content_disposition
from .link_state import LinkState as LinkState
from .signed_string import new_link_id as new_link_id
from .signer import SecureLinkSigner as SecureLinkSigner
from .verifier import SecureLinkVerifier as SecureLinkVerifier
from .verifier import TokenStatus as TokenStatus
from .verifier import VerifiedLink as VerifiedLink
