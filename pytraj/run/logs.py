"""Logging across processes and per-run capture of log records and standard output.

- Worker processes never write logs themselves: a :class:`ForwardingHandler` collects
  their records, which travel to the main process with the run results and are handed
  to the main process's loggers there (:func:`emit_forwarded`), so one logging
  configuration decides what is shown and where.
- With ``log_stdout=True``, :class:`RunCapture` records a run's log records and what it
  prints into one text stored with the run (``traj.runs[i].log``); printing still
  reaches the terminal.
"""

from __future__ import annotations

import io
import json
import logging
import logging.config
import sys
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import Any, TextIO

from pytraj.run.options import invalid

__all__ = [
    "CAPTURE_FORMAT",
    "ForwardingHandler",
    "RunCapture",
    "apply_log_config",
    "emit_forwarded",
    "install_forwarding",
    "logger_levels",
]

#: Layout of a captured log record in ``traj.runs[i].log``.
CAPTURE_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def apply_log_config(config: dict[str, Any] | Path | None) -> None:
    """Configure logging once, from a ``dictConfig`` dict or a config file."""
    if config is None:
        return
    try:
        if isinstance(config, dict):
            logging.config.dictConfig(config)
        elif config.suffix.lower() == ".json":
            logging.config.dictConfig(json.loads(config.read_text(encoding="utf-8")))
        else:
            logging.config.fileConfig(config, disable_existing_loggers=False)
    # logging.config reports a bad configuration with whatever the failing step raised
    # (ValueError, TypeError, KeyError, ImportError, configparser and JSON errors ...);
    # each means the option's value is wrong, so each becomes the option's error.
    except Exception as exc:
        raise invalid(
            "log_config",
            config,
            f"logging.config refused it ({type(exc).__name__}: {exc}); see the "
            "logging.config docs for the dictConfig / fileConfig format",
        ) from exc


def logger_levels() -> dict[str, int]:
    """Levels set explicitly in this process: ``""`` for the root, then named loggers.

    Spawned workers start with a fresh logging module; they get these levels so that
    they emit (and forward) the same records the main process would show.
    """
    levels = {"": logging.getLogger().level}
    for name, logger in logging.Logger.manager.loggerDict.items():
        if isinstance(logger, logging.Logger) and logger.level != logging.NOTSET:
            levels[name] = logger.level
    return levels


class ForwardingHandler(logging.Handler):
    """Collect records in a worker so they can be sent to the main process."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self._last: logging.LogRecord | None = None

    def emit(self, record: logging.LogRecord) -> None:
        # The same record reaches this handler once per logger on its way up the
        # hierarchy when it is installed on several loggers; forward it once.
        if record is self._last:
            return
        self._last = record
        self.records.append(_portable(record))

    def take(self) -> list[logging.LogRecord]:
        """Return the records collected so far and forget them."""
        records, self.records = self.records, []
        return records


def _portable(record: logging.LogRecord) -> logging.LogRecord:
    """A picklable copy: the message rendered, exception text formatted."""
    data = dict(record.__dict__)
    data["msg"] = record.getMessage()
    data["args"] = None
    if record.exc_info:
        data["exc_text"] = record.exc_text or logging.Formatter().formatException(record.exc_info)
    data["exc_info"] = None
    data.pop("message", None)
    return logging.makeLogRecord(data)


def install_forwarding(levels: dict[str, int] | None) -> ForwardingHandler:
    """Route every log record of this (worker) process into one forwarding handler.

    Handlers inherited from the parent (under fork) are replaced so that nothing is
    written twice; ``levels`` (from :func:`logger_levels`) restores the main
    process's levels in a freshly spawned worker.
    """
    handler = ForwardingHandler()
    root = logging.getLogger()
    for logger in logging.Logger.manager.loggerDict.values():
        if isinstance(logger, logging.Logger) and logger.handlers:
            for old in list(logger.handlers):
                logger.removeHandler(old)
            logger.addHandler(handler)
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    for name, level in (levels or {}).items():
        logging.getLogger(name or None).setLevel(level)
    return handler


def emit_forwarded(records: Iterable[logging.LogRecord]) -> None:
    """Hand records forwarded by a worker to this process's loggers."""
    for record in records:
        logger = logging.getLogger(record.name)
        if logger.isEnabledFor(record.levelno):
            logger.handle(record)


class _Tee(io.TextIOBase):
    """Write to the run's capture buffer and to the original stream."""

    def __init__(self, buffer: io.StringIO, original: TextIO) -> None:
        self._buffer = buffer
        self._original = original

    def write(self, text: str) -> int:
        self._buffer.write(text)
        return self._original.write(text)

    def flush(self) -> None:
        self._original.flush()

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return self._original.isatty()

    def fileno(self) -> int:
        return self._original.fileno()


class _CaptureHandler(logging.Handler):
    def __init__(self, buffer: io.StringIO) -> None:
        super().__init__(logging.DEBUG)
        self._buffer = buffer
        self.setFormatter(logging.Formatter(CAPTURE_FORMAT))

    def emit(self, record: logging.LogRecord) -> None:
        self._buffer.write(self.format(record) + "\n")


class RunCapture:
    """Capture one run's log records and standard output as text.

    Use as a context manager around the run; :attr:`text` holds what was captured.
    Only Python-level output is seen: programs started by the run write to the
    inherited file descriptors (capture their output with ``subprocess``).
    """

    __slots__ = ("_buffer", "_handler", "_stdout", "text")

    def __init__(self) -> None:
        self._buffer = io.StringIO()
        self._handler = _CaptureHandler(self._buffer)
        self._stdout: TextIO | None = None
        self.text = ""

    def __enter__(self) -> RunCapture:
        logging.getLogger().addHandler(self._handler)
        self._stdout = sys.stdout
        sys.stdout = _Tee(self._buffer, sys.stdout)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._stdout is not None:
            sys.stdout = self._stdout
        logging.getLogger().removeHandler(self._handler)
        self.text = self._buffer.getvalue()
