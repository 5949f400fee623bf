"""The commercial CDNs' signed links and cookies: CloudFront, Cloud CDN and Akamai EdgeAuth.

:class:`CDNLinkSigner` signs them from a key set with the same calls as nginx's signer; each
dialect's module can also be used alone. ``cryptography`` (the ``cdn`` extra) is imported only
when a CloudFront key is used.
"""

from .akamai import EdgeAuthSigner as EdgeAuthSigner
from .cloudcdn import CloudCDNSigner as CloudCDNSigner
from .cloudfront import CloudFrontSigner as CloudFrontSigner
from .signer import CDNLinkSigner as CDNLinkSigner
