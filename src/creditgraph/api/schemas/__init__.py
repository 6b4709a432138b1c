"""Request and response models of the HTTP API (``XCreate`` in, ``XPublic`` out), one module
per route module; the shared ones (reasons, errors) here."""

from __future__ import annotations

from creditgraph.api.schemas.common import ID, ErrorPublic, ReasonPublic, error_responses

__all__ = ["ID", "ErrorPublic", "ReasonPublic", "error_responses"]
