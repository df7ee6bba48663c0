"""The exceptions that entry points turn into a single line for the user."""


class UserError(Exception):
    """Bad input or environment: the message says what was wrong and what to do."""


class TrainingDiverged(UserError):
    """Losses, weights or samples stopped being finite; nothing after the last good checkpoint
    is kept."""


def one_line(error, limit=200):
    """An exception's message on one line of at most `limit` characters (None: any length;
    its type's name when it has none): what a UserError quotes of an error it explains."""
    text = " ".join(str(error).split()) or type(error).__name__
    return text if limit is None or len(text) <= limit else text[:limit - 3] + "..."
