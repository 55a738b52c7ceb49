"""The demo history: a deterministic, realistic command sequence of the two businesses sharing
the CRM (DESIGN.md §1), and the loader that writes it through the command layer.

Not part of the write side: it drives `commands` like any other client would (`crm demo` and
`crm bench` build their stores with it); nothing in domain, commands, projections or consumers
imports it.

    history.py   `generate`: reference data and every client's story merged in business time
    world.py     the step type, the world every story sees, story plumbing
    cars.py      car-service clients          remote.py  remote-service organisations
    billing.py   invoices, acts and payments  happenings.py  the rest of an organisation's month
    words.py     word lists and UK bank holidays
    load.py      `Loader`: steps to grouped atomic writes, server-chosen ids swapped in
"""

from demo.history import EVENT_TYPES, generate, until_today
from demo.load import DemoLoadError, Loader, LoadStats
from demo.world import Alias, DemoStep

__all__ = ["EVENT_TYPES", "Alias", "DemoLoadError", "DemoStep", "LoadStats", "Loader",
           "generate", "until_today"]
