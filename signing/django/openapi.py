"""drf-spectacular's schema hints where it is installed; without it they change nothing.

The per-link API and the serializer fields describe themselves for an OpenAPI schema, but the
app does not need drf-spectacular to run: a project without it gets the same API, undescribed.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from typing import Any

if importlib.util.find_spec("drf_spectacular") is not None:
    from drf_spectacular.types import OpenApiTypes as OpenApiTypes
    from drf_spectacular.utils import OpenApiResponse as OpenApiResponse
    from drf_spectacular.utils import extend_schema as extend_schema
    from drf_spectacular.utils import extend_schema_field as extend_schema_field
    from drf_spectacular.utils import extend_schema_view as extend_schema_view
else:  # pragma: no cover - exercised by the installed-package test, which has no drf-spectacular

    class OpenApiTypes:  # type: ignore[no-redef]
        URI = DATETIME = STR = BINARY = None

    def OpenApiResponse(*args: Any, **kwargs: Any) -> None:  # type: ignore[no-redef]  # noqa: N802
        return None

    def _unchanged(*args: Any, **kwargs: Any) -> Callable[[Any], Any]:
        return lambda target: target

    extend_schema = extend_schema_field = extend_schema_view = _unchanged
