"""The one hierarchy of errors that portable raises for a user's mistake or an impossible request.

Every class carries the exit code the command line maps it to, so the CLI needs no table of its own.
"""
from __future__ import annotations

from collections.abc import Iterable


#: The longest message an error keeps whole: a message quotes values from the input (a CSV field, a string in a
#: model), and a field of 50 MB made a 50 MB "one-line" error.
MAX_MESSAGE = 1800


def shorten(text: str, limit: int = MAX_MESSAGE) -> str:
    """`text`, with its middle cut out (and the cut counted) when it is longer than `limit` characters."""
    if len(text) <= limit:
        return text
    keep = limit // 2
    return f"{text[:keep]} ...[{len(text) - 2 * keep:,} characters cut]... {text[-keep:]}"


class PortableError(Exception):
    """Base class: a problem with the input or the request, reported without a traceback (exit code 1)."""

    exit_code = 1

    def __init__(self, message: str, *, path: object = None, where: str | None = None) -> None:
        message = shorten(message)
        self.path = None if path is None else str(path)
        self.where = where
        prefix = ""
        if self.path:
            prefix = f"{self.path}: "
            if where:
                prefix = f"{self.path}: at {where}: "
        elif where:
            prefix = f"at {where}: "
        self.message = message
        super().__init__(prefix + message)


def locate(exc: PortableError, path: object) -> PortableError:
    """`exc`, made to name `path` when it names no file (raised where the file was not known: a converter, the
    checker's input plan); its message then starts with the path, as every located error's does."""
    if exc.path is None and path is not None:
        exc.path = str(path)
        exc.args = (f"{exc.path}: {exc.args[0]}" if exc.args else exc.path, *exc.args[1:])
    return exc


class InputError(PortableError):
    """A file is missing, unreadable, truncated or not what its name says."""


class UnknownFormatError(InputError):
    """No registered format recognises the input."""


class NotFittedError(InputError):
    """An estimator was given before it was fitted."""


class UnsupportedModelError(PortableError):
    """The model is valid but no converter can handle it (or some part of it)."""


class ConversionError(PortableError):
    """A converter failed, or produced an artifact that its target's checker rejects."""


class NoConverterError(PortableError):
    """No route through the registry leads from the source format to the target format."""

    def __init__(self, source: str, target: str, edges: Iterable[str], hint: str = "") -> None:
        listed = ", ".join(sorted(edges)) or "none"
        msg = f"no converter route from '{source}' to '{target}'. Converters available: {listed}."
        if hint:
            msg += f" {hint}"
        super().__init__(msg)
        self.source, self.target = source, target


class MissingDependencyError(PortableError):
    """An optional library needed for this step is not installed."""


class UnsafePickleError(InputError):
    """A pickle wants to import a global that is not on the allowlist."""

    def __init__(self, message: str, *, path: object = None, refused: Iterable[str] = ()) -> None:
        self.refused = sorted(set(refused))
        super().__init__(message, path=path)


class CorruptModelError(InputError):
    """A loaded model's fitted internals are inconsistent (a tree link out of range, a sparse index past its
    matrix, ...): library code would read outside its buffers or loop for ever on them."""


class ModelCrashedError(PortableError):
    """The original model crashed, hung or ran out of memory in its isolated worker process."""


class SignatureMismatchError(PortableError):
    """Two models cannot be compared because their inputs or outputs differ."""


class OutputExistsError(PortableError):
    """The output already exists and --force was not given."""


class NotEquivalentError(PortableError):
    """A checked conversion disagrees with its original (exit code 3)."""

    exit_code = 3

    def __init__(self, message: str, report: object = None) -> None:
        super().__init__(message)
        self.report = report


class PFAError(InputError):
    """A PFA document breaks the specification, or uses a construct portable does not support."""


class PFARuntimeError(PortableError):
    """A PFA function raised one of the specification's runtime errors while scoring."""

    def __init__(self, message: str, *, code: int | None = None, where: str | None = None) -> None:
        self.code = code
        text = f"{message} (PFA runtime error {code})" if code is not None else message
        super().__init__(text, where=where)


class CannotRunError(PortableError):
    """The converted model is valid but cannot run here (e.g. portable's NNEF executor lacks an operator it
    uses): a limit of this machine's runtime, never evidence that the conversion computes something else."""


class NNEFError(PortableError):
    """An NNEF artifact is malformed, or a model cannot be expressed in NNEF."""


def cannot_run(model: object, arrays: dict, exc: BaseException) -> PortableError:
    """A runtime's TypeError/ValueError on inputs it cannot take (text for numbers, objects, a wrong width), said
    as a PortableError naming the model's file and the inputs' types and shapes."""
    first = (str(exc).strip().splitlines() or [""])[0]
    shapes = ", ".join(f"{n}: {getattr(a, 'dtype', type(a).__name__)} {list(getattr(a, 'shape', ()))}"
                       for n, a in arrays.items())
    origin = getattr(model, "origin", None)
    return PortableError(f"{getattr(model, 'format', 'the')} model '{getattr(model, 'name', '?')}' could not run on "
                         f"these inputs ({shapes}): {type(exc).__name__}: {first}",
                         path=getattr(origin, "path", None))


def control_characters(name: str) -> str | None:
    """`name` escaped (as Python writes it) when it holds control characters (newlines, escape sequences, carriage
    returns, bidirectional overrides) that would print as something else in a terminal; None when it is plain."""
    import unicodedata

    if any(unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") for c in name):
        return name.encode("unicode_escape").decode("ascii")
    return None
