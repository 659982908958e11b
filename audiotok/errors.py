"""Exceptions that carry a one-line message for the user (bad files, bad tokens, bad models)."""


class UserError(Exception):
    """An error the user can fix; the CLI prints ``error: <message>`` and exits non-zero."""
