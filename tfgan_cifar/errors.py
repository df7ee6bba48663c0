"""The exceptions that entry points turn into a single line for the user."""


def one_line(error, limit=160):
    """An exception (or text) as one line of at most `limit` characters."""
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


class UserError(Exception):
    """Bad input or environment: the message says what was wrong and what to do."""


class TrainingDiverged(UserError):
    """Losses, weights or samples stopped being finite; nothing after the last good checkpoint
    is kept."""
