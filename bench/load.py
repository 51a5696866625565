"""Load bench: biblio under concurrent use, against ``biblio run`` (real gunicorn).

One command, one part per concern, each printing its figures (nothing is asserted):

- ``storage`` (:mod:`load_storage`): parallel join submissions on SQLite and
  PostgreSQL (5xx, acknowledged, stored, lost, duplicated) and a full sync of a
  synthetic library while people join (the sync's outcome, the joins' figures).
- ``web`` (:mod:`load_web`): parallel logins, the login timing oracle, a 32-client
  list/search/item/export mix with and without uncached-style bibliographies running,
  and the fuzz's counts.

::

    .venv/bin/python bench/load.py                  # every part
    .venv/bin/python bench/load.py storage --help   # one part, with its options

Each part lives in its own module with a ``main(argv)``; add a part by adding it to
:data:`PARTS`.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import load_storage
import load_web

#: Part name -> its ``main(argv)``.
PARTS: dict[str, Callable[[list[str]], None]] = {
    "storage": load_storage.main,
    "web": load_web.main,
}


def main(argv: list[str]) -> None:
    if argv and argv[0] in PARTS:
        PARTS[argv[0]](argv[1:])
        return
    if argv:
        sys.exit(f"usage: bench/load.py [{'|'.join(PARTS)}] [options]")
    for part in PARTS.values():
        part([])


if __name__ == "__main__":
    main(sys.argv[1:])
