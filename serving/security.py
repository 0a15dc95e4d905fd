"""API keys: read once, kept only as SHA-256 hashes, compared in constant time."""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Iterable
from pathlib import Path

from medtwin_ml.errors import ConfigError

__all__ = ["ENV_KEYS", "ApiKeys"]

ENV_KEYS = "MEDTWIN_API_KEYS"
MIN_KEY_CHARS = 16


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8")).digest()


class ApiKeys:
    """The accepted bearer keys, as hashes.

    A key's id (for the audit log) is the first 8 hex digits of a second hash of
    the key, so the log never holds anything a client could replay.
    """

    def __init__(self, keys: Iterable[str]):
        digests = []
        for key in keys:
            key = key.strip()
            if not key:
                continue
            if len(key) < MIN_KEY_CHARS:
                raise ConfigError(
                    "API keys",
                    [("key", f"{len(key)} characters", f">= {MIN_KEY_CHARS} chars")],
                )
            digests.append(_digest(key))
        self._digests = tuple(digests)

    def __len__(self) -> int:
        return len(self._digests)

    @classmethod
    def load(cls, path: str | os.PathLike[str] | None = None) -> ApiKeys:
        """Keys from ``path`` (one a line, ``#`` comments) plus ``$MEDTWIN_API_KEYS``
        (comma-separated)."""
        keys = [k for k in os.environ.get(ENV_KEYS, "").split(",") if k.strip()]
        if path is not None:
            path = Path(path)
            if not path.is_file():
                raise ConfigError(
                    "--api-keys", [("api_keys", str(path), "an existing file")]
                )
            for line in path.read_text(encoding="utf-8").splitlines():
                line = line.strip()
                if line and not line.startswith("#"):
                    keys.append(line)
        return cls(keys)

    def identify(self, key: str | None) -> str | None:
        """The key's id if ``key`` is accepted, else ``None``.

        Every stored hash is compared, match or not, so the time taken does not
        depend on which key (if any) matched.
        """
        if not key:
            return None
        digest = _digest(key)
        found = False
        for stored in self._digests:
            found |= hmac.compare_digest(digest, stored)
        if not found:
            return None
        return hashlib.sha256(b"medtwin-key-id:" + digest).hexdigest()[:8]
