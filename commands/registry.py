"""Imports every handler module, so each command's handler is registered exactly once."""

from __future__ import annotations

from commands import activity, clients, money, reference, service, situations
from commands.base import HANDLERS, Command

__all__ = ["COMMANDS", "activity", "clients", "money", "reference", "service", "situations"]

COMMANDS: dict[str, type[Command]] = {name: cls for name, (cls, _h) in HANDLERS.items()}
