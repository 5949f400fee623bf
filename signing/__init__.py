"""Sign and check download links: nginx ``secure_link`` links, the CDNs' formats, timed tokens.

The core is pure Python with no Django: keys travel as one value, a :class:`KeySet`;
:class:`SecureLinkSigner` and :class:`SecureLinkVerifier` make and check the links nginx
checks by itself (docs/link-format.md specifies them). The subpackages group the rest by
what a reader looks for:

- :mod:`signing.nginx`: nginx's links, their check in Python, the per-link state, and the
  shipped nginx folder with its installer;
- :mod:`signing.cdn`: CloudFront, Cloud CDN and Akamai links from the same keys;
- :mod:`signing.fleet`: the sync agent that keeps every verifier's keys in step (network I/O);
- :mod:`signing.django`: the Django app (``pip install 'signed-downloads[django]'``), imported
  only by a Django project.
"""

__version__ = "0.13.0"

from .algorithms import HMAC_SHA256 as HMAC_SHA256
from .algorithms import MD5 as MD5
from .algorithms import SigningAlgorithm as SigningAlgorithm
from .exc import BadSignature as BadSignature
from .exc import DownloadsUsedUp as DownloadsUsedUp
from .exc import KeySetError as KeySetError
from .exc import LinkError as LinkError
from .exc import LinkExpired as LinkExpired
from .exc import LinkNotYetValid as LinkNotYetValid
from .exc import LinkRevoked as LinkRevoked
from .exc import MalformedRequest as MalformedRequest
from .exc import UnsafePath as UnsafePath
from .keys import generate_secret as generate_secret
from .keys import Key as Key
from .keys import KeySet as KeySet
from .keys import KeyState as KeyState
from .links import CookieGrant as CookieGrant
from .links import SignedLink as SignedLink
from .nginx.disposition import content_disposition as content_disposition
from .nginx.link_state import LinkState as LinkState
from .nginx.query import nginx_arg as nginx_arg
from .nginx.signed_string import new_link_id as new_link_id
from .nginx.signer import SecureLinkSigner as SecureLinkSigner
from .nginx.verifier import SecureLinkVerifier as SecureLinkVerifier
from .nginx.verifier import TokenStatus as TokenStatus
from .nginx.verifier import VerifiedLink as VerifiedLink
from .paths import nginx_uri as nginx_uri
from .timed import TimedTokenSigner as TimedTokenSigner
