"""Errors that describe a problem the user can fix (bad config, bad path, mismatched files)."""


class UserError(Exception):
    """A one-line, actionable problem with the user's input; commands print it without a traceback."""


class IncompatibleCheckpointError(UserError):
    """A checkpoint or dataset was made for another env, resolution, model or action space."""
