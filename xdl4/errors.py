"""Every error xdl4 raises on purpose: :class:`DL4Error` and its subclasses.

Each class also subclasses the built-in exception a caller would expect (``ValueError``
for bad data or files, ``FileExistsError`` for refused overwrites, ``TypeError`` for
operations a kind does not define, ``RuntimeError`` for fits; one built-in each, so that
errors pickle across processes), so ``except ValueError``
keeps working while ``except xdl4.DL4Error`` catches everything xdl4 reports.

>>> import xdl4
>>> issubclass(xdl4.DL4ValidationError, (xdl4.DL4Error, ValueError))
True
"""

from __future__ import annotations


class DL4Error(Exception):
    """Base of every error xdl4 raises on purpose."""


class DL4ValidationError(DL4Error, ValueError):
    """A dataset breaks the DL4 contract; the message lists every problem found."""

    def __init__(self, problems: list[str] | str, name: str | None = None):
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        head = f"dataset {name!r} " if name else "dataset "
        super().__init__(head + "is not valid DL4:\n  - " + "\n  - ".join(self.problems))

    def __reduce__(self):  # picklable across processes (stack_files workers)
        return (_rebuild_validation_error, (self.args[0], self.problems))


def _rebuild_validation_error(message: str, problems: list[str]) -> DL4ValidationError:
    err = DL4ValidationError.__new__(DL4ValidationError)
    ValueError.__init__(err, message)
    err.problems = problems
    return err


class ArgumentError(DL4Error, ValueError):
    """An argument xdl4 cannot use: an unknown option, a value out of range, inputs that
    do not fit together, a selection that leaves nothing to compute. The message says
    which argument and what is allowed."""


class KindError(DL4Error, TypeError):
    """An operation that the dataset's kind does not define (e.g. ``npred`` of flux
    points), or an unknown / unregistered kind."""


class GridError(DL4Error, ValueError):
    """A sky grid that is missing, lost (e.g. its ``spatial_ref`` attributes dropped by an
    xarray operation) or not usable for the operation."""


class StackError(DL4Error, ValueError):
    """Datasets that cannot be stacked (kinds, axes or sky grids differ)."""


class RunReadError(StackError):
    """A run could not be read or stacked; the message names the file."""


class FormatError(DL4Error, ValueError):
    """A file that cannot be read or written as DL4; the message names the file and the
    HDU / variable / card."""


class DL4FileExistsError(DL4Error, FileExistsError):
    """A write would replace an existing file without ``overwrite=True``."""


class DL4FileNotFoundError(DL4Error, FileNotFoundError):
    """A file to read (or a companion it names, or the folder to write into) does not
    exist; the message names it."""


class ModelError(DL4Error, ValueError):
    """Invalid models: unknown types, bad parameters, models that apply to no dataset."""


class FitError(DL4Error, RuntimeError):
    """The statistic could not be evaluated (NaN) or the fit could not be set up."""


class UnitError(DL4Error, ValueError):
    """A unit string that cannot be parsed, or a unit that cannot be converted to the one
    needed; the message names what carries it (variable, argument, parameter)."""


class DL4Warning(UserWarning):
    """Something xdl4 read or was given that it keeps going with but that you should know
    about (content of a file it cannot represent, a model parameter left at its default);
    ``warnings.filterwarnings("error", category=xdl4.DL4Warning)`` makes them errors."""


__all__ = ["ArgumentError", "DL4Error", "DL4FileExistsError", "DL4FileNotFoundError",
           "DL4ValidationError", "DL4Warning", "FitError", "FormatError", "GridError",
           "KindError", "ModelError", "RunReadError", "StackError", "UnitError"]
