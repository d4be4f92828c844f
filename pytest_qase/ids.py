"""Random ids (result, step and attachment ids, file names) that tests cannot patch.

A result's ``id`` is its idempotency key in Qase: a test that mocks ``uuid.uuid4`` (or
``os.urandom``) for its own sake must not give two results the same id, which would make
Qase keep one and drop the other. The functions are taken at import, like ``clock``.
"""

from __future__ import annotations

import os
import uuid

_URANDOM = os.urandom
_UUID = uuid.UUID


def new_uuid() -> uuid.UUID:
    return _UUID(bytes=_URANDOM(16), version=4)


def new_id() -> str:
    """A random UUID as text, the form of the ids Qase takes."""
    return str(new_uuid())
