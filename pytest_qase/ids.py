"""Random ids (result, step and attachment ids, file names) that tests cannot patch.

A result's ``id`` is its idempotency key in Qase: a test that mocks ``uuid.uuid4``, seeds
``random`` or patches ``os.urandom`` for its own sake must not give two results the same
id, which would make Qase keep one and drop the other. So the ids come from a private
generator, seeded once from the system's randomness (and again in a forked child, which
would otherwise repeat its parent's ids). It also spares the test thread a system call
per result: ``os.urandom`` is one, and a slow one in some sandboxes.
"""

from __future__ import annotations

import os
import random
import uuid

_URANDOM = os.urandom
_UUID = uuid.UUID
_generator = random.Random(_URANDOM(32))


def _reseed() -> None:
    _generator.seed(_URANDOM(32))


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reseed)


def new_uuid() -> uuid.UUID:
    return _UUID(int=_generator.getrandbits(128), version=4)


# the version (4) and variant (RFC 4122) bits of a UUID, set as ``uuid.UUID`` sets them
_CLEAR = ~((0xc000 << 48) | (0xf000 << 64))
_SET = (0x8000 << 48) | (4 << 76)


def new_id() -> str:
    """A random UUID as text, the form of the ids Qase takes (one per result: formatted
    here directly, three times faster than ``str(uuid.UUID(...))``)."""
    text = "%032x" % (_generator.getrandbits(128) & _CLEAR | _SET)
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"
