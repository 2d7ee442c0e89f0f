"""The project's one error type: a one-line message a user can act on."""


class DistillError(Exception):
    """A user-facing error. The message is one line and names the file, line or field at fault."""

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))
