"""The error hierarchy: every error is a PytrajError and the builtin callers catch."""

from __future__ import annotations

import inspect

import pytest

from pytraj import errors

EXPECTED_BUILTINS = {
    "InvalidNameError": ValueError,
    "NodeNotFoundError": KeyError,
    "NodeAttributeError": AttributeError,
    "AmbiguousNameError": LookupError,
    "NodeExistsError": ValueError,
    "NodeTypeError": TypeError,
    "UnsupportedValueError": TypeError,
    "InvalidValueError": ValueError,
    "ParameterLockedError": RuntimeError,
    "ExplorationError": ValueError,
    "RunError": RuntimeError,
    "RunValueMissingError": KeyError,
    "RunsFailedError": RuntimeError,
    "OptionError": ValueError,
    "StudyMismatchError": ValueError,
    "PickleNotAllowedError": PermissionError,
    "StorageError": OSError,
    "FileFormatError": OSError,
    "FileLockedError": OSError,
    "FileWriteError": OSError,
    "TrajectoryNotFoundError": KeyError,
    "ValueDecodeError": ValueError,
    "PathTypeError": TypeError,
    "UnknownOptionError": TypeError,
    "MissingDependencyError": ImportError,
    "GitError": RuntimeError,
}


@pytest.mark.parametrize(("name", "builtin"), sorted(EXPECTED_BUILTINS.items()))
def test_each_error_is_also_a_builtin(name: str, builtin: type[Exception]) -> None:
    cls = getattr(errors, name)
    assert issubclass(cls, errors.PytrajError)
    assert issubclass(cls, builtin)


def test_every_error_class_is_listed_and_drawn_in_the_docstring() -> None:
    classes = {
        name
        for name, value in vars(errors).items()
        if inspect.isclass(value) and issubclass(value, errors.PytrajError | Warning)
    }
    assert classes == set(errors.__all__)
    for name in classes:
        assert name in (errors.__doc__ or "")


def test_messages_read_as_plain_text() -> None:
    error = errors.NodeNotFoundError("'parameters' has no child 'x'")
    assert str(error) == "'parameters' has no child 'x'"


def test_runs_failed_error_carries_the_failed_runs() -> None:
    error = errors.RunsFailedError("2 runs failed", failed=[3, 5])
    assert error.failed == [3, 5]
    assert str(error) == "2 runs failed"
