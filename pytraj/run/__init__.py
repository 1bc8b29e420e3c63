"""Running studies: the Environment, its executors, worker processes, caps and progress."""

from pytraj.run.environment import Environment

__all__ = ["Environment"]
