"""Sign and check download links: nginx ``secure_link`` links and itsdangerous timed tokens.

Pure Python, no Django. Keys travel as one value, a :class:`KeySet`; docs/link-format.md
specifies the links.
"""

from .algorithms import HMAC_SHA256 as HMAC_SHA256
from .algorithms import MD5 as MD5
from .algorithms import SigningAlgorithm as SigningAlgorithm
from .disposition import content_disposition as content_disposition
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
from .link_format import SignedLink as SignedLink
from .link_format import new_link_id as new_link_id
from .link_state import LinkState as LinkState
from .nginx import nginx_arg as nginx_arg
from .paths import nginx_uri as nginx_uri
from .secure_link import SecureLinkSigner as SecureLinkSigner
from .timed import TimedTokenSigner as TimedTokenSigner
from .verification import LinkStatus as LinkStatus
from .verification import SecureLinkVerifier as SecureLinkVerifier
from .verification import VerifiedLink as VerifiedLink
