"""Import the optional ``eval`` extra, or explain how to install it."""

from __future__ import annotations

import importlib
from types import ModuleType

from ..errors import UsageError

INSTALL_HINT = "pip install 'privspeech[eval]'"


def need(module: str) -> ModuleType:
    """Import `module` from the ``eval`` extra; a UsageError with the install hint if missing."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise UsageError(f"the evaluation needs the Python module {module!r}, which is not installed "
                         f"({exc})", hint=INSTALL_HINT) from None
