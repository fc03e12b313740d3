"""Errors the commands report in one line, without a traceback."""


class BrokerUnavailable(RuntimeError):
    """The queue (Redis) cannot be reached."""
