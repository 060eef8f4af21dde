"""Command-line entry point: ``paperscope``.

Every module in this package registers its commands on the apps of ``cli.app`` when imported,
so adding a command is adding a module; nothing here needs editing.
"""

from __future__ import annotations

import importlib
import pkgutil

from paperscope.cli.app import app


def _load_command_modules() -> None:
    for module in pkgutil.iter_modules(__path__):
        if module.name != "app":
            importlib.import_module(f"{__name__}.{module.name}")


_load_command_modules()


def main() -> None:
    app()
