# Authors: The sklearn_flowspectrum developers
# SPDX-License-Identifier: BSD-3-Clause
"""Write output files whole or not at all.

Every writer of the package (:func:`write_idx`, the command line's tables,
images, labels, models and plots) writes to a temporary file in the folder of
its destination and renames it over the destination (``os.replace``) only
once the file is complete.  A failure, or Ctrl-C, removes the temporary file:
no partial output ever exists, and a file already at the destination is left
as it was.

Inside an :func:`all_or_nothing` block (the command line runs each command in
one) the renames wait until the block ends, so the outputs of one command
appear together or not at all.
"""

import contextvars
import os
import secrets
from contextlib import contextmanager
from pathlib import Path

__all__ = ["all_or_nothing", "atomic_output"]

# (temporary, destination) pairs waiting for the enclosing all_or_nothing
# block; None outside one.
_PENDING = contextvars.ContextVar("sklearn_flowspectrum_pending_outputs", default=None)


def _temporary_beside(path):
    """Create an empty, unique temporary file next to ``path``.

    The name ends with the destination's own name, so that writers that pick
    a format from the suffix (``.gz``, ``.npy``, ``.parquet``, ``.png``) pick
    the same one; it starts with a dot, so folder listings skip it.
    """
    while True:
        temporary = path.with_name(f".tmp-{secrets.token_hex(4)}-{path.name}")
        try:
            # 0o666 through the umask: the permissions a plain open() gives.
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        except OSError as exc:
            _name_destination(exc, temporary, path)
            raise
        os.close(fd)
        return temporary


def _sync(path):
    with open(path, "rb+") as f:
        os.fsync(f.fileno())


def _name_destination(exc, temporary, destination):
    """Make an ``OSError`` about the temporary file name the destination."""
    if not isinstance(exc, OSError) or exc.errno is None:
        return
    named = exc.filename
    if named is None or (
        isinstance(named, str | os.PathLike)
        and os.fspath(named) == os.fspath(temporary)
    ):
        exc.filename, exc.filename2 = os.fspath(destination), None


def _remove(paths):
    for path in paths:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass


def _commit(pairs):
    """Rename each temporary over its destination; remove what is left on error."""
    done = 0
    try:
        for temporary, _ in pairs:
            _sync(temporary)
        for temporary, destination in pairs:
            try:
                os.replace(temporary, destination)
            except OSError as exc:
                _name_destination(exc, temporary, destination)
                raise
            done += 1
    except BaseException:
        _remove(temporary for temporary, _ in pairs[done:])
        raise


@contextmanager
def atomic_output(path):
    """Context manager giving a temporary path to write ``path`` through.

    Write the whole output to the yielded path.  When the block ends without
    an exception the temporary file replaces ``path``; on any exception
    (including ``KeyboardInterrupt``) it is removed and ``path`` is left
    untouched.  Inside :func:`all_or_nothing` the replacement waits for the
    end of that block.

    Parameters
    ----------
    path : str or path-like
        The destination.  Its folder must exist.

    Yields
    ------
    temporary : pathlib.Path
        An empty file in the same folder, with a name ending in
        ``path``'s name.

    Examples
    --------
    >>> import os, tempfile
    >>> from sklearn_flowspectrum._atomic import atomic_output
    >>> path = os.path.join(tempfile.mkdtemp(), "out.txt")
    >>> with atomic_output(path) as tmp:
    ...     _ = tmp.write_text("complete")
    >>> open(path).read()
    'complete'
    """
    destination = Path(path)
    temporary = _temporary_beside(destination)
    try:
        yield temporary
    except BaseException as exc:
        _remove([temporary])
        _name_destination(exc, temporary, destination)
        raise
    pending = _PENDING.get()
    if pending is None:
        _commit([(temporary, destination)])
    else:
        pending.append((temporary, destination))


@contextmanager
def all_or_nothing():
    """Context manager making every :func:`atomic_output` inside it wait.

    The outputs written inside the block replace their destinations together
    when it ends without an exception; on an exception none of them does and
    their temporary files are removed.  Blocks nest: an inner one joins the
    outer one.
    """
    if _PENDING.get() is not None:
        yield
        return
    pending = []
    token = _PENDING.set(pending)
    try:
        yield
    except BaseException:
        _remove(temporary for temporary, _ in pending)
        raise
    finally:
        _PENDING.reset(token)
    _commit(pending)
