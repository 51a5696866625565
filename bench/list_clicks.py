"""Count what a member does to build a 5-item reading list and download it as DOCX.

Drives real Chromium (Playwright, Debian's ``/usr/bin/chromium``) against the app on
the synced sample library and counts the member's gestures: clicks (tab switches and
the browser's "Copy link address" menu counted as the clicks they take, since
Playwright cannot open the browser's own menus) and fields typed or pasted into. Two
flows, each the shortest the interface allows:

* ``keys`` (all there was before one-click adds): make the list, then for each item
  copy its link on the Items page and paste it into the list's box in another tab,
  press Add, open the public page, press "Word (DOCX)".
* ``buttons``: Items, "Add to reading list" on the first row (the picker starts a list
  with it), back to Items, "Add to reading list" on four more rows, "View and export"
  in the list bar, "Word (DOCX)".

Either flow checks the downloaded file holds the five entries. ``--root`` runs the
app of another source tree (e.g. a ``git worktree`` of an older commit) to measure
it the same way. Prints one line per flow, and the weight of the item list (50 rows,
plain and gzipped), which the add buttons make heavier. Run:

    .venv/bin/python bench/list_clicks.py [--flows keys,buttons] [--root PATH]
"""

from __future__ import annotations

import argparse
import gzip
import json
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@dataclass
class Tally:
    clicks: int = 0
    typed: int = 0

    def click(self, locator, n: int = 1) -> None:  # type: ignore[no-untyped-def]
        locator.click()
        self.clicks += n


def serve(root: Path, folder: Path):  # type: ignore[no-untyped-def]
    """Sync the sample library from the stand-in into ``folder``; serve the app."""
    sys.path.insert(0, str(root))
    from werkzeug.serving import make_server

    from biblio import create_app, storage, subscribe_packages
    from biblio.settings import load_settings
    from biblio.standin.library import StandinLibrary
    from biblio.standin.server import StandinServer
    from biblio.sync.run import run_sync

    sample = json.loads((root / "biblio/data/sample_library.json").read_text(encoding="utf-8"))
    zotero = StandinServer(StandinLibrary.from_dict(sample)).start()
    conf = folder / "settings.toml"
    conf.write_text(
        f'[zotero]\nlibrary_id = {sample["group"]["id"]}\nbase_url = "{zotero.url}"\n'
        f'[database]\nurl = "sqlite:///{folder / "biblio.sqlite3"}"\n'
        f'[sync]\nlock_file = "{folder / "sync.lock"}"\nprerender = false\n'
        "[mail]\nenabled = false\n",
        encoding="utf-8",
    )
    settings = load_settings(conf, environ={})
    subscribe_packages()
    print("app from", Path(storage.__file__).parent.parent.parent, file=sys.stderr)
    run_sync(storage.open_database(settings["database"]["url"]), settings)
    server = make_server("127.0.0.1", 0, create_app(settings), threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, zotero, f"http://127.0.0.1:{server.server_port}"


def keys_flow(browser, url: str, tally: Tally) -> Path:  # type: ignore[no-untyped-def]
    context = browser.new_context(accept_downloads=True)
    lists = context.new_page()
    lists.goto(url + "/")
    tally.click(lists.get_by_role("link", name="Reading lists", exact=True))
    lists.get_by_label("Title").first.fill("Five readings")
    tally.typed += 1
    tally.click(lists.get_by_role("button", name="Create the list"))
    items = context.new_page()  # a second tab: one click (middle-click the Items link)
    items.goto(url + "/items")
    tally.clicks += 1
    box = lists.get_by_label("Item keys or item page links")
    for n in range(5):
        href = items.locator("a.item-title").nth(n).get_attribute("href")
        tally.clicks += 2  # right-click the title, "Copy link address"
        tally.clicks += 1  # switch to the list's tab
        lists.bring_to_front()
        box.fill((box.input_value() + "\n" + url + href).strip())
        tally.clicks += 1  # click into the box (then paste)
        tally.typed += 1
        if n < 4:
            tally.clicks += 1  # back to the Items tab
            items.bring_to_front()
    tally.click(lists.get_by_role("button", name="Add", exact=True))
    tally.click(lists.get_by_role("link", name="View the public page"))
    return download(lists, tally)


def buttons_flow(browser, url: str, tally: Tally) -> Path:  # type: ignore[no-untyped-def]
    page = browser.new_context(accept_downloads=True).new_page()
    page.goto(url + "/")
    nav = page.get_by_role("navigation", name="Main")
    tally.click(nav.get_by_role("link", name="Items", exact=True))
    tally.click(page.locator(".add-to-list a").first)  # no list yet: the picker
    page.get_by_label("Title of the new list").fill("Five readings")
    tally.typed += 1
    tally.click(page.get_by_role("button", name="Start the list"))
    tally.click(nav.get_by_role("link", name="Items", exact=True))
    for n in range(1, 5):
        tally.click(page.locator(".add-to-list").nth(n).get_by_role("button"))
        page.locator(".add-to-list").nth(n).locator(".in-list").wait_for()
    tally.click(page.get_by_role("link", name="View and export"))
    return download(page, tally)


def page_weight(url: str) -> str:
    """Bytes of ``/items`` (50 rows), plain and gzipped, as a browser gets it, and the
    median time of 30 pages of 41-70 rows no page cache holds (list lines warm)."""
    with urllib.request.urlopen(f"{url}/items?_size=50", timeout=60) as response:
        body = response.read()
    times = []
    for size in range(41, 71):
        started = time.perf_counter()
        with urllib.request.urlopen(f"{url}/items?_size={size}", timeout=60) as response:
            response.read()
        times.append(time.perf_counter() - started)
    return (
        f"/items (50 rows): {len(body):,} bytes, {len(gzip.compress(body)):,} gzipped; "
        f"uncached page median {statistics.median(times) * 1000:.0f} ms"
    )


def download(page, tally: Tally) -> Path:  # type: ignore[no-untyped-def]
    with page.expect_download() as info:
        tally.click(page.get_by_role("link", name="Word (DOCX)"))
    path = Path(tempfile.mkdtemp()) / info.value.suggested_filename
    info.value.save_as(path)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flows", default="keys,buttons")
    parser.add_argument("--root", type=Path, default=ROOT, help="source tree of the app")
    args = parser.parse_args()
    from docx import Document
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        server, zotero, url = serve(args.root.resolve(), Path(tmp))
        try:
            print(page_weight(url))
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
                for flow in args.flows.split(","):
                    tally = Tally()
                    path = {"keys": keys_flow, "buttons": buttons_flow}[flow](browser, url, tally)
                    doc = Document(str(path))
                    entries = [p for p in doc.paragraphs if p.paragraph_format.left_indent]
                    print(
                        f"{flow:8} {tally.clicks:3d} clicks, {tally.typed} fields typed or "
                        f"pasted; DOCX {path.name}: {len(entries)} entries, title "
                        f"{doc.core_properties.title!r}, author {doc.core_properties.author!r}, "
                        f"created {doc.core_properties.created:%Y-%m-%d}"
                    )
                browser.close()
        finally:
            server.shutdown()
            zotero.stop()


if __name__ == "__main__":
    main()
