"""The exceptions that entry points turn into a single line for the user."""


class UserError(Exception):
    """Bad input or environment: the message says what was wrong and what to do."""


class TrainingDiverged(UserError):
    """Losses, weights or samples stopped being finite; nothing after the last good checkpoint
    is kept."""
