"""Sign and check download links: nginx ``secure_link`` links and itsdangerous timed tokens.

Pure Python, no Django. See :mod:`signing.secure_link` for the link format.
"""

from .disposition import content_disposition as content_disposition
from .exc import BadSignature as BadSignature
from .exc import LinkError as LinkError
from .exc import LinkExpired as LinkExpired
from .exc import MalformedRequest as MalformedRequest
from .exc import UnsafePath as UnsafePath
from .keys import check_keys as check_keys
from .keys import generate_secret as generate_secret
from .keys import KeySet as KeySet
from .keys import parse_key_set as parse_key_set
from .keys import parse_keys as parse_keys
from .keys import render_key_set as render_key_set
from .keys import render_nginx_keys as render_nginx_keys
from .nginx import nginx_arg as nginx_arg
from .paths import nginx_uri as nginx_uri
from .secure_link import LinkStatus as LinkStatus
from .secure_link import SecureLinkSigner as SecureLinkSigner
from .secure_link import SignedLink as SignedLink
from .secure_link import VerifiedLink as VerifiedLink
from .timed import TimedTokenSigner as TimedTokenSigner
