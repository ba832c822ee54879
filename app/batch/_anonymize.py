"""Salted hashes for identifiers (``--anonymize``).

An identifier (patient ID, study/series/SOP instance UID, file path) becomes
``HMAC-SHA256(salt, kind + value)`` truncated to 20 hexadecimal digits: the same
value maps to the same pseudonym across a run and its reruns (same salt), and
without the salt a pseudonym cannot be turned back into the identifier by
hashing candidate values.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

from app.atomic import atomic_write_text
from app.errors import UserError

__all__ = ["Pseudonymizer", "load_or_create_salt"]


class Pseudonymizer:
    """Maps identifiers to salted pseudonyms; the identity map when disabled.

    Parameters
    ----------
    salt : bytes or None
        The secret salt; None disables anonymisation.
    """

    def __init__(self, salt: bytes | None) -> None:
        self._salt = salt

    @property
    def enabled(self) -> bool:
        """True when identifiers are replaced."""
        return self._salt is not None

    def __call__(self, value: str, kind: str = "id") -> str:
        """The pseudonym of ``value`` (empty stays empty)."""
        if self._salt is None or not value:
            return value
        digest = hmac.new(self._salt, f"{kind}\x00{value}".encode(), hashlib.sha256).hexdigest()
        return f"{kind}-{digest[:20]}"


def load_or_create_salt(results_dir: Path, salt_file: str | None = None) -> bytes:
    """The salt: from ``salt_file``, else ``RESULTS_DIR/.work/salt`` (created if absent).

    Keep the salt secret and do not share the ``.work`` folder: whoever has it
    can test guesses of identifiers against the pseudonyms.
    """
    path = Path(salt_file) if salt_file else results_dir / ".work" / "salt"
    if path.exists():
        try:
            text = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise UserError(f"{path}: cannot read the salt: {exc.strerror or exc}") from None
        if len(text) < 16:
            raise UserError(f"{path}: the salt must be at least 16 characters long")
        return text.encode()
    if salt_file:
        raise UserError(f"{path}: salt file not found")
    salt = secrets.token_hex(32)
    atomic_write_text(path, salt + "\n")
    os.chmod(path, 0o600)
    return salt.encode()
