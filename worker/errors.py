"""Errors the commands report in one line, without a traceback."""


class BrokerUnavailable(RuntimeError):
    """The queue (Redis) cannot be reached."""


class JobNotResumable(RuntimeError):
    """bin/resume was given a job it must not take over (brokered, finished, or still alive)."""
