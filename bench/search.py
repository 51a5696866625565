"""Benchmark search quality: the rank of the wanted item for ten researchers' searches.

Each search is a question a member of the discussion group asks about one of the three
prongs (MLIS access, pathways, worker equity), written as they would type it, with the
one work of the sample library they are after. The sample library is synced through
the loopback Zotero stand-in into a scratch SQLite file, and each search is asked of
``/items.json`` through the app, in its default order (what a visitor sees first). It
prints, per search, how many items matched and the wanted item's rank (``-`` when it
is not found at all), plus the mean reciprocal rank. It speaks only HTTP to the app, so
the same script measures any checkout: run it with ``PYTHONPATH`` pointing at another
worktree to get the "before" figures.

    .venv/bin/python bench/search.py
    PYTHONPATH=/tmp/search-before .venv/bin/python bench/search.py
"""

from __future__ import annotations

import copy
import json
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlencode

#: (search text, key of the wanted item, what the researcher is after)
SEARCHES = (
    ("faculty status", "7KH6FARE", "Owning Faculty Status: A Manifesto"),
    (
        "paraprofessional working conditions",
        "PTC42DBA",
        "The Role, Status, and Working Conditions of Paraprofessionals",
    ),
    ("low morale", "Q9SQDTF3", "The Low Morale Experience of Academic Librarians"),
    ("apprenticeship", "6FAGJWQ2", "Employer Best Practice Guide to Apprenticeships"),
    ("racial wage gap", "6ZXX6GX3", "Is There a Racial Wage Gap in Research Libraries?"),
    (
        "residency programs librarians of color",
        "CUPMEGFN",
        "Evaluation of Academic Library Residency Programs ... for Librarians of Color",
    ),
    ("vocational awe", "ZZTQEL7B", "Vocational Awe and Librarianship"),
    ("hiring non-MLS librarians", "HPRBBRQJ", "Hiring Non-MLS Librarians"),
    ("unionization", "DAKB7XE5", "Academic Librarians Seeking Equity Through Unionization"),
    ("precarious employment", "JTECGTFD", "Precarious Employment in Canadian Libraries"),
)


def main() -> int:
    from biblio import create_app, storage, subscribe_packages
    from biblio.settings import load_settings
    from biblio.standin.library import StandinLibrary
    from biblio.standin.server import StandinServer
    from biblio.sync.run import run_sync

    sample = Path(__file__).resolve().parent.parent / "biblio" / "data" / "sample_library.json"
    data = json.loads(sample.read_text(encoding="utf-8"))
    subscribe_packages()
    with (
        tempfile.TemporaryDirectory() as folder,
        StandinServer(StandinLibrary.from_dict(copy.deepcopy(data), copy=False)) as zotero,
    ):
        conf = Path(folder) / "settings.toml"
        conf.write_text(
            f'[zotero]\nlibrary_id = {zotero.library.group_id}\nbase_url = "{zotero.url}"\n'
            f'[database]\nurl = "sqlite:///{Path(folder) / "biblio.sqlite3"}"\n'
            f'[sync]\nlock_file = "{Path(folder) / "sync.lock"}"\nprerender = false\n',
            encoding="utf-8",
        )
        settings = load_settings(conf, environ={})
        run_sync(storage.open_database(settings["database"]["url"]), settings)
        client = create_app(settings).test_client()
        print(f"biblio from {Path(sys.modules['biblio'].__file__ or '').parent.parent}")
        print("| search | wanted | matches | rank |")
        print("|---|---|---|---|")
        reciprocal = 0.0
        for q, key, title in SEARCHES:
            body = client.get("/items.json?" + urlencode({"q": q, "_size": 1000})).get_json()
            keys = [row["key"] for row in body.get("rows") or []]
            rank = keys.index(key) + 1 if key in keys else None
            reciprocal += 1 / rank if rank else 0.0
            print(f"| `{q}` | {title} | {body.get('count', 0)} | {rank or '-'} |")
        print(f"mean reciprocal rank: {reciprocal / len(SEARCHES):.2f}")
        storage.dispose_all()
    return 0


if __name__ == "__main__":
    sys.exit(main())
