"""Our library's errors as HTTP answers, mapped in one place (the same statuses as nginx)."""

from __future__ import annotations

from rest_framework import status
from rest_framework.exceptions import APIException

from .. import DownloadsUsedUp, LinkError, LinkExpired, MalformedRequest


class LinkInvalid(APIException):
    status_code = status.HTTP_403_FORBIDDEN
    default_detail = "This link is not valid."
    default_code = "link_invalid"


class LinkGone(APIException):
    status_code = status.HTTP_410_GONE
    default_detail = "This link has expired."
    default_code = "link_expired"


class LinkUsedUp(APIException):
    status_code = status.HTTP_410_GONE
    default_detail = "This link has been used as many times as it allows."
    default_code = "downloads_used_up"


class LinkMalformed(APIException):
    status_code = status.HTTP_400_BAD_REQUEST
    default_detail = "This request is malformed."
    default_code = "link_malformed"


def api_exception_for(error: LinkError) -> APIException:
    """403 for a bad signature (revoked, not yet valid), 410 for an expired or used-up one, 400 for a malformed request."""
    if isinstance(error, LinkExpired):
        return LinkGone()
    if isinstance(error, DownloadsUsedUp):
        return LinkUsedUp()
    if isinstance(error, MalformedRequest):
        return LinkMalformed()
    return LinkInvalid()


def status_for(error: LinkError) -> int:
    return int(api_exception_for(error).status_code)
