"""The optional ``revoice`` extra and the espeak-ng program: imported or found when first needed, else one clear
error with the way to install them."""

from __future__ import annotations

import importlib
import shutil
from types import ModuleType

from ...errors import UsageError

INSTALL_HINT = "pip install 'privspeech[revoice]'"


def need(module: str) -> ModuleType:
    """Import `module` from the ``revoice`` extra; a UsageError with the install hint if it is missing."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise UsageError(f"--method revoice needs the Python module {module!r}, which is not installed ({exc})",
                         hint=INSTALL_HINT) from None


def espeak() -> str:
    """The path of the espeak-ng program (it turns words into the phonemes the synthetic voice speaks)."""
    found = shutil.which("espeak-ng")
    if found is None:
        raise UsageError("--method revoice needs the espeak-ng program, which is not on PATH",
                         hint="install it: apt-get install espeak-ng (Debian, Ubuntu), dnf install espeak-ng, "
                              "brew install espeak-ng")
    return found
