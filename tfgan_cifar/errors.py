"""The one exception type that entry points turn into a single line for the user."""


class UserError(Exception):
    """Bad input or environment: the message says what was wrong and what to do."""
