"""Lazy package attributes, as scikit-image's ``lazy_loader`` does: a name loads its module on use.

A package ``__init__`` lists which module holds each public name and keeps the real imports under
``typing.TYPE_CHECKING`` for type checkers; importing the package then costs nothing, and
``from atomlens.physics.optics import Aberrations`` imports only the module that defines it
(no torch, pandas or scipy.signal unless that module needs them). Written here rather than taken
from ``lazy_loader`` because it is twenty lines and one dependency fewer.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any

__all__ = ["attach", "make_callable"]


def attach(
    package: str, where: Mapping[str, Iterable[str]]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """Module-level ``__getattr__`` and ``__dir__`` for ``package``.

    Parameters
    ----------
    package : str
        The package's ``__name__``.
    where : mapping of module name to names
        For each module (absolute name), the public names it defines.

    Returns
    -------
    (__getattr__, __dir__)
    """
    owner = {name: module for module, names in where.items() for name in names}

    def __getattr__(name: str) -> Any:
        if name not in owner:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(owner[name]), name)

    def __dir__() -> list[str]:
        return sorted(owner)

    return __getattr__, __dir__


def make_callable(package: str, verb: Callable[..., Any]) -> None:
    """Make the module ``package`` callable: ``atomlens.restore(image)`` calls ``verb``.

    The module's class is replaced by a subclass of :class:`types.ModuleType` with a
    ``__call__`` (module ``__class__`` assignment, PEP 549 style), so ``from atomlens.restore
    import restore`` and the short form of the issue's API both work.
    """
    import sys
    import types

    class CallableModule(types.ModuleType):
        __doc__ = f"``{package}(...)`` calls ``{verb.__module__}.{verb.__name__}``."

        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            return verb(*args, **kwargs)

    sys.modules[package].__class__ = CallableModule
