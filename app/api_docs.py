"""The interactive API docs (Swagger UI, ReDoc) load every asset from this server."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponseBase

# Pages whose assets must all come from this server (the API docs): the browser refuses the
# rest, such as the Redocly logo that ReDoc's bundle links to.
LOCAL_ASSETS_ONLY = ("default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; "
                     "script-src 'self' 'unsafe-inline'; worker-src 'self' blob:; font-src 'self' data:")


def local_assets_only(view: Callable[..., HttpResponseBase]) -> Callable[..., HttpResponseBase]:
    """Wrap ``view`` so that its pages may load nothing from another host (Content-Security-Policy)."""

    @functools.wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        response = view(request, *args, **kwargs)
        response["Content-Security-Policy"] = LOCAL_ASSETS_ONLY
        return response

    return wrapped
