"""Errors that carry a one-line reason meant for the user."""

from __future__ import annotations

from os import PathLike

__all__ = ["InputFileError", "UserError"]


class UserError(Exception):
    """Bad input from the user: the message is shown as is, on one line.

    Parameters
    ----------
    message : str
        One line naming the file (and key) and the problem.
    exit_status : int
        Exit status of the command line (2: usage or input error).
    """

    def __init__(self, message: str, exit_status: int = 2) -> None:
        super().__init__(" ".join(str(message).split()))
        self.exit_status = exit_status


class InputFileError(UserError):
    """A file that cannot be used, with the reason; ``str()`` is ``"PATH: reason"``."""

    def __init__(self, path: str | PathLike[str], reason: str, exit_status: int = 2) -> None:
        self.path = str(path)
        self.reason = " ".join(str(reason).split())
        super().__init__(f"{self.path}: {self.reason}", exit_status)
