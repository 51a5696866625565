"""Hostile-use bench: the rows of issue 11's table that ``bench/load.py`` and the fuzz do
not measure, each as one probe against a real ``biblio run`` (gunicorn, two workers).

The site is started the way :mod:`load_storage` starts one (the loopback Zotero
stand-in, an SMTP sink, ``python -m biblio --settings FILE run`` in a fresh folder), with
settings given as ``BIBLIO_<SECTION>__<KEY>`` variables, which every biblio version
reads. The code under test is whatever ``--python`` runs, so the same probes measure the
code before and after a change::

    .venv/bin/python bench/hostile.py
    .venv/bin/python bench/hostile.py --python /work/base/.venv/bin/python

Each probe prints one line: status counts and the fact observed. Nothing is asserted; a
probe that cannot apply to the checkout prints ``n/a`` and why. The stand-in is this
checkout's (it is only the test server), whatever the code under test.
"""

from __future__ import annotations

import argparse
import http.client
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from email import message_from_bytes, policy
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import quote, urlencode, urlsplit

from load_storage import CSRF, SAMPLE, Site, running_site, sync_first
from sqlalchemy.engine import make_url

from biblio.standin.library import StandinLibrary

OWNER = "owner@example.org"
PASSWORD = "correct horse battery staple 11"
#: Values that once made every list, feed and export route answer 500.
BAD_NUMBERS = ("--1", "²", "⁹", "99999999999999999999")
NUMBER_PARAMS = ("year", "decade", "_size", "_facet_size")
#: Text pasted from Word: a vertical tab in the title, the abstract and an author's name.
VERTICAL_TAB_ITEM = {
    "itemType": "journalArticle",
    "title": "Labour in libraries\x0bpasted from Word",
    "abstractNote": "An abstract\x0bpasted from Word.",
    "creators": [{"creatorType": "author", "firstName": "Ann\x0b", "lastName": "Tab"}],
    "date": "2024",
}
#: Settings for every probe's site: limits out of the way of the probes that are not
#: about limits, and the log at its default level (the access log is probe 7's subject).
BASE_ENV = {
    "BIBLIO_LOG_LEVEL": "INFO",
    "BIBLIO_AUTH__LOGIN_RATE_LIMIT": "100000 per minute",
    "BIBLIO_LISTS__CREATE_RATE_LIMIT": "100000 per hour",
}
PRODUCTION_ENV = {
    "BIBLIO_WEB__ENV": "production",
    "BIBLIO_WEB__PUBLIC_URL": "https://biblio.example",
    "BIBLIO_SECRET_KEY": "bench-only-secret-" + "x" * 32,
}


@dataclass
class Answer:
    status: int
    headers: http.client.HTTPMessage
    text: str

    @property
    def location(self) -> str:
        return self.headers.get("Location") or ""


class Client:
    """One visitor: its own cookies and source address; redirects are not followed."""

    def __init__(self, base: str, source: str = "127.0.0.1") -> None:
        parts = urlsplit(base)
        self.host, self.port, self.source = parts.hostname or "", parts.port or 80, source
        self.cookies: dict[str, str] = {}

    def request(
        self,
        method: str,
        target: str,
        form: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Answer:
        conn = http.client.HTTPConnection(
            self.host, self.port, timeout=300, source_address=(self.source, 0)
        )
        sent = dict(headers or {})
        if self.cookies:
            sent["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        body = None
        if form is not None:
            body = urlencode(form)
            sent["Content-Type"] = "application/x-www-form-urlencoded"
        try:
            conn.request(method, target, body, sent)  # a Host header of ours replaces the real one
            resp = conn.getresponse()
            raw = resp.read()
        finally:
            conn.close()
        for line in resp.headers.get_all("Set-Cookie") or []:
            for name, morsel in SimpleCookie(line).items():
                if not morsel.value or morsel["max-age"] == "0":
                    self.cookies.pop(name, None)
                else:
                    self.cookies[name] = morsel.value
        return Answer(resp.status, resp.headers, raw.decode("utf-8", "replace"))

    def get(self, target: str, **kw: object) -> Answer:
        return self.request("GET", target, **kw)  # type: ignore[arg-type]

    def csrf(self, target: str) -> str:
        found = CSRF.search(self.get(target).text)
        return found.group(1) if found else ""


class Mailbox:
    """An SMTP handler that keeps every message (aiosmtpd calls ``handle_DATA``)."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd API)
        msg = message_from_bytes(envelope.content, policy=policy.default)
        parts = [p.get_content() for p in msg.walk() if p.get_content_maintype() == "text"]
        self.messages.append(f"To: {msg['To']}\nSubject: {msg['Subject']}\n" + "\n".join(parts))
        return "250 accepted"

    def wait_for(self, needle: str, seconds: float = 20) -> str | None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for text in self.messages:
                if needle in text:
                    return text
            time.sleep(0.2)
        return None


def counts(statuses: Iterable[object]) -> str:
    found = Counter(str(s) for s in statuses)
    return ", ".join(f"{n}×{s}" for s, n in sorted(found.items()))


def biblio(site: Site, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    """``python -m biblio --settings FILE ARGS`` of the code under test, in the site's folder
    (not a checkout: ``python -m`` would import biblio from the working directory)."""
    return subprocess.run(
        [site.python, "-m", "biblio", "--settings", str(site.settings), *args],
        env=site.env,
        cwd=site.settings.parent,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=600,
    )


def join_form(email: str, **fields: str) -> dict[str, str]:
    name = email.split("@")[0]
    return {
        "name": f"Person {name}",
        "email": email,
        "zotero_username": name,
        "reason": "I study library labour and would like to join the group.",
        "prongs": "pathways",
        "consent": "yes",
        **fields,
    }


def apply(client: Client, email: str, headers: dict[str, str] | None = None, **fields) -> Answer:
    form = {"csrf_token": client.csrf("/join"), **join_form(email, **fields)}
    return client.request("POST", "/join", form=form, headers=headers)


def sign_in(client: Client, password: str = PASSWORD, next_url: str | None = None) -> Answer:
    target = "/-/admin/login" + (f"?next={quote(next_url, safe='')}" if next_url else "")
    form = {"csrf_token": client.csrf(target), "email": OWNER, "password": password}
    if next_url is not None:
        form["next"] = next_url
    return client.request("POST", target, form=form)


def signed_in(client: Client) -> bool:
    return client.get("/-/admin/").status == 200


def sentence(text: str, pattern: str) -> str:
    """The first sentence-ish stretch of a page's text that matches ``pattern``."""
    plain = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", text))
    found = re.search(rf"[^.!?>]*(?:{pattern})[^.!?<]*[.!?]?", plain, re.IGNORECASE)
    return found.group(0).strip()[:160] if found else ""


# -- the probes ------------------------------------------------------------------------


@dataclass
class Run:
    """What the probes share: the site, its mailbox, and what earlier probes made."""

    site: Site
    mailbox: Mailbox
    folder: Path
    status_links: list[str]
    edit_links: list[str]
    vt_key: str


def probe_sequential_joins(run: Run) -> str:
    client = Client(run.site.base)
    answers = []
    for i in range(14):
        answer = apply(client, f"seq{i}-{uuid.uuid4().hex[:6]}@example.org")
        answers.append(answer.status)
        if answer.status == 303:
            run.status_links.append(urlsplit(answer.location).path)
    return f"14 submissions, one cookie jar: {counts(answers)}"


def probe_number_params(run: Run) -> str:
    client = Client(run.site.base)
    listing = client.get("/items").text
    suffixes = sorted(set(re.findall(r'href="[^"]*?/items\.([a-z0-9]+)[?"]', listing)))
    exports = [s for s in suffixes if s not in ("json", "atom")]
    routes = ["/items", "/items.json", "/items.atom", "/bibliography"]
    routes += [f"/items.{s}" for s in exports]
    statuses: list[int] = []
    bad: Counter[str] = Counter()
    for route in routes:
        for param in NUMBER_PARAMS:
            for value in BAD_NUMBERS:
                status = client.get(f"{route}?{param}={quote(value)}").status
                statuses.append(status)
                if status >= 500:
                    bad[param] += 1
    worst = ", ".join(f"{p} {bad[p]}" for p in NUMBER_PARAMS)
    return (
        f"{sum(bad.values())}/{len(statuses)} answers ≥ 500 ({worst}); all: {counts(statuses)}; "
        f"routes: {', '.join(routes)}"
    )


def probe_odd_ids(run: Run) -> str:
    owner = Client(run.site.base)
    login = sign_in(owner)
    huge = "/-/admin/requests/99999999999999999999999"
    admin_ids = [owner.get(huge).status, owner.get(huge + ".json").status]
    page = Client(run.site.base).get("/-/admin/login?next=%2F-%2Fadmin%2F%0Aevil").status
    other = Client(run.site.base)
    after = sign_in(other, next_url="/-/admin/\nevil")
    if not run.edit_links:
        return "n/a: no reading list could be made"
    link = run.edit_links[0]
    slug, token = link.split("/")[2], re.search(r"token=([^&]+)", link).group(1)  # type: ignore[union-attr]
    editor = Client(run.site.base)
    edit = editor.get(f"/lists/{slug}/edit?token=a%0Ab").status
    # The edit form names an entry by its item key, and moving one redirects to it.
    form = {"csrf_token": editor.csrf(link), "token": token}
    added = editor.request(
        "POST", f"/lists/{slug}/edit", form={**form, "action": "add", "keys": run.vt_key}
    )
    moved = editor.request(
        "POST", f"/lists/{slug}/edit", form={**form, "action": "up", "key": "a\nb"}
    )
    return (
        f"admin id 10^23 (page, .json): {', '.join(map(str, admin_ids))} (signed in: "
        f"{login.status}); login page with a newline in next: {page}; signing in with it: "
        f"{after.status} {after.location!r}; list edit link with a newline in its token: "
        f"{edit}; list edit form with a newline in an entry's key: {moved.status} (adding "
        f"an entry first: {added.status})"
    )


def probe_host_header(run: Run) -> str:
    email = f"host-{uuid.uuid4().hex[:6]}@example.org"
    answer = apply(Client(run.site.base), email, headers={"Host": "evil.example"})
    mail = run.mailbox.wait_for(email)
    if mail is None:
        return f"POST /join with Host: evil.example: {answer.status}; no email caught in 20 s"
    hosts = sorted({urlsplit(u).netloc for u in re.findall(r"https?://[^\s\"<>]+", mail)})
    evil = any(h.startswith("evil.example") for h in hosts)
    return (
        f"POST /join with Host: evil.example: {answer.status}; email links to evil.example: "
        f"{'yes' if evil else 'no'}; hosts linked: {', '.join(hosts) or 'none'}"
    )


def probe_logout_replay(run: Run) -> str:
    owner = Client(run.site.base)
    login = sign_in(owner)
    before = signed_in(owner)
    stolen = dict(owner.cookies)
    admin = owner.get("/-/admin/").text
    token = CSRF.search(admin)
    logout = owner.request(
        "POST", "/-/admin/logout", form={"csrf_token": token.group(1) if token else ""}
    )
    replay = Client(run.site.base)
    replay.cookies = stolen
    answer = replay.get("/-/admin/")
    return (
        f"sign-in {login.status}, admin page {'200' if before else 'refused'}, logout "
        f"{logout.status}; old cookie on /-/admin/: {answer.status} → still signed in: "
        f"{'yes' if answer.status == 200 else 'no'}"
    )


def probe_vertical_tab(run: Run) -> str:
    client = Client(run.site.base)
    feed = client.get("/items.atom")
    try:
        ET.fromstring(feed.text.encode("utf-8"))
        well_formed = "yes"
    except ET.ParseError as exc:
        well_formed = f"no ({exc})"
    in_feed = "Labour in libraries" in feed.text
    item = client.get(f"/items/{run.vt_key}")
    raw = "\x0b" in item.text
    return (
        "\\x0b in title, abstract and an author's name: "
        f"/items.atom {feed.status}, well-formed XML: {well_formed}, item in feed: "
        f"{'yes' if in_feed else 'no'}; /items/{run.vt_key} {item.status}, raw \\x0b in "
        f"HTML: {'yes' if raw else 'no'}"
    )


def make_list(run: Run) -> int:
    """A reading list, whose edit link probes 3 and 7 use; the answer's status."""
    client = Client(run.site.base)
    created = client.request(
        "POST",
        "/lists/new",
        form={"csrf_token": client.csrf("/lists/new"), "title": "Bench list", "intro": ""},
    )
    if created.status in (302, 303) and "token=" in created.location:
        parts = urlsplit(created.location)
        run.edit_links.append(f"{parts.path}?{parts.query}")
    return created.status


def probe_access_log(run: Run) -> str:
    client = Client(run.site.base)
    tokens = []
    for link in run.status_links[:1]:
        client.get(link)
        tokens.append(link.rsplit("/", 1)[-1])
    for link in run.edit_links[:1]:
        client.get(link)
        tokens.append(re.search(r"token=([^&]+)", link).group(1))  # type: ignore[union-attr]
    time.sleep(1)  # gunicorn writes its access log line after the response
    log = (run.folder / "run.log").read_text(encoding="utf-8", errors="replace")
    lines = [line for line in log.splitlines() if re.search(r'"(GET|POST) /', line)]
    found = sum(log.count(t) for t in tokens)
    return (
        f"visited {len(tokens)} secret links (join status, list edit); access-log lines: "
        f"{len(lines)}; token occurrences in the log: {found}"
    )


def probe_someone_elses_id(run: Run) -> str:
    stolen_id = "7654321"
    a = apply(
        Client(run.site.base), f"a-{uuid.uuid4().hex[:6]}@example.org", zotero_user_id=stolen_id
    )
    b = apply(
        Client(run.site.base), f"b-{uuid.uuid4().hex[:6]}@example.org", zotero_user_id=stolen_id
    )
    page = b
    if b.status in (302, 303):  # the page B is sent to is what B learns
        page = Client(run.site.base).get(urlsplit(b.location).path)
    said = sentence(page.text, REVEALING)
    reveals = "yes" if said else "no"
    return (
        f"A with user ID {stolen_id}: {a.status}; B with the same ID: {b.status}; "
        f"reveals an open request: {reveals} ({said or 'B sees its own status page'})"
    )


def versions_listed(answer: Answer) -> str:
    """What ``/-/versions.json`` tells: its status and the package versions it lists."""
    listed = re.findall(r'"([A-Za-z][\w.-]*)"\s*:\s*"(\d+\.\d+[^"]*)"', answer.text)
    shown = ", ".join(f"{n} {v}" for n, v in listed[:3]) + (", …" if len(listed) > 3 else "")
    return f"{answer.status}, {len(listed)} package versions listed ({shown or 'none'})"


#: Words a page would use to tell someone that another request holds their Zotero ID.
REVEALING = r"already|open request|another request|someone else|duplicate|in use"


def probe_versions(run: Run) -> str:
    answer = Client(run.site.base).get("/-/versions.json")
    return f"development, /-/versions.json: {versions_listed(answer)}"


def probe_production_headers(python: str) -> str:
    env = {**BASE_ENV, **PRODUCTION_ENV}
    try:
        with running_site(python, StandinLibrary.from_file(SAMPLE), env=env) as site:
            client = Client(site.base)
            home = client.get("/")
            versions = client.get("/-/versions.json")
    except RuntimeError as exc:
        return f"n/a: production site did not start ({str(exc)[-200:]})"
    hsts = home.headers.get("Strict-Transport-Security")
    return (
        f"production, GET / {home.status}: Strict-Transport-Security "
        f"{'present (' + hsts + ')' if hsts else 'absent'}; /-/versions.json: "
        f"{versions_listed(versions)}"
    )


def probe_master_fds(run: Run) -> str:
    pid = run.site.pid
    try:
        targets = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
    except OSError as exc:
        return f"n/a: cannot read /proc/{pid}/fd ({exc})"
    database = str(make_url(run.site.database_url).database)
    held = sorted({Path(t).name for t in targets if t.startswith(database)})
    return f"master pid {pid} holds the database open: " + (
        f"yes ({', '.join(held)})" if held else "no"
    )


def probe_lockout_elsewhere(run: Run) -> str:
    attacker = Client(run.site.base, source="127.0.0.1")
    wrong = [sign_in(attacker, password="wrong password " + str(i)).status for i in range(5)]
    owner = Client(run.site.base, source="127.0.0.2")
    answer = sign_in(owner)
    ok = answer.status in (302, 303) and signed_in(owner)
    return (
        f"5 wrong passwords from 127.0.0.1: {counts(wrong)}; right password from 127.0.0.2: "
        f"{answer.status} → owner signed in: {'yes' if ok else 'no'}"
    )


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--python", default=sys.executable, help="Python that runs biblio.")
    parser.add_argument("--keep", action="store_true", help="keep the sites' folders")
    args = parser.parse_args(argv)
    started = time.monotonic()
    tempfile.tempdir = scratch = tempfile.mkdtemp(prefix="bench-hostile-")  # each site's folder
    try:
        measure(args.python)
    finally:
        if args.keep:
            print(f"# sites' folders (settings, database, run.log) kept in {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)
    print(f"# {time.monotonic() - started:.0f} s", flush=True)


def measure(python: str) -> None:
    """Every probe against ``python``'s biblio, one line each."""
    commit = subprocess.run(
        ["git", "-C", str(Path(python).parents[2]), "log", "-1", "--format=%h %cs"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    print(f"biblio under test: {python} (commit {commit or 'unknown'})", flush=True)
    library = StandinLibrary.from_file(SAMPLE)
    vt_key = library.add_item(VERTICAL_TAB_ITEM)
    mailbox = Mailbox()
    with running_site(python, library, env=BASE_ENV, smtp_handler=mailbox) as site:
        run = Run(site, mailbox, site.settings.parent, [], [], vt_key)
        at_boot = probe_master_fds(run)
        sync_first(site)
        added = biblio(site, "owners", "add", OWNER, "--password-stdin", stdin=PASSWORD + "\n")
        if added.returncode:
            print(f"# owners add failed: {added.stderr.strip()[-300:]}", flush=True)
        print(f"# reading list created: {make_list(run)}", flush=True)
        probes: list[tuple[str, Callable[[Run], str]]] = [
            ("1. sequential joins", probe_sequential_joins),
            ("2. number parameters", probe_number_params),
            ("3. huge ids and newlines", probe_odd_ids),
            ("4. Host header in emails", probe_host_header),
            ("5. logout, then the old cookie", probe_logout_replay),
            ("6. vertical tab in a title", probe_vertical_tab),
            ("7. access log", probe_access_log),
            ("8. someone else's Zotero ID", probe_someone_elses_id),
            ("9. versions", probe_versions),
            (
                "10. gunicorn master and SQLite",
                lambda r: f"after boot: {at_boot}; after the probes: {probe_master_fds(r)}",
            ),
            ("11. lockout from elsewhere", probe_lockout_elsewhere),
        ]
        for title, probe in probes:
            try:
                line = probe(run)
            except Exception as exc:  # a probe that breaks says so and the others go on
                line = f"probe failed: {type(exc).__name__}: {exc}"
            print(f"{title}: {line}", flush=True)
    print(f"9. production headers: {probe_production_headers(python)}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
