"""Load bench, web part: biblio under concurrent and hostile use; prints its figures.

Against ``biblio run`` with its defaults (gunicorn,
two workers) on SQLite, serving a synced 10k-item synthetic library:

* 24 parallel wrong-password logins to one owner account → answers by status (5xx
  counted), with the login rate limit raised so the lockout itself is measured;
* the login timing oracle: median time of a login with an unknown email, with a real
  owner's email and an empty password, and with a wrong password (many interleaved
  samples, lockouts raised out of the way);
* 32 clients for 60 s on a list/search/item/export mix, alone and while 6 clients
  keep asking for uncached-style bibliographies of the whole library (each its own
  styles; a "being prepared" answer is followed as a browser would, after its
  ``Retry-After``, and a served style is followed by the client's next one) →
  throughput, p50/p95 per page kind, errors, the bibliography answers by kind;
* the fuzz's request and 5xx counts (``tests/test_fuzz.py`` writes them to
  ``test-artifacts/``; ``--fuzz`` runs it first).

``--code DIR`` measures another checkout (e.g. ``git worktree add /tmp/before REV``
with its own ``.venv``): its own ``biblio`` syncs the cache and serves it, so the
before/after table compares like with like. Run:

    .venv/bin/python bench/load.py web [--items 10000] [--seconds 60] [--code DIR]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import re
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from urllib.parse import urlencode

from biblio.mailcatcher import free_port
from biblio.standin.server import StandinServer
from biblio.standin.synthetic import synthetic_library

ROOT = Path(__file__).resolve().parent.parent
SCRATCH = ROOT / "bench" / ".scratch"
OWNER, PASSWORD = "owner@example.org", "a long bench passphrase"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
#: Styles the heavy clients want, none of them the default (so none pre-rendered).
HEAVY_STYLES = (
    "ieee",
    "nature",
    "chicago-author-date",
    "modern-language-association",
    "american-sociological-association",
    "harvard-cite-them-right",
    "american-medical-association",
    "elsevier-harvard",
    "springer-basic-author-date",
    "nlm-citation-sequence",
    "chicago-notes-bibliography",
    "american-political-science-association",
)


# -- a tiny HTTP client -------------------------------------------------------------


class Visitor:
    """One client on one keep-alive connection, with its session cookie."""

    def __init__(self, port: int, timeout: float = 120) -> None:
        self.port, self.timeout = port, timeout
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        self.cookie = ""
        self.retry_after = 0.0

    def request(self, method: str, path: str, form: dict[str, str] | None = None) -> tuple:
        """``(status, body)``; a dropped connection is retried once on a new one."""
        body = urlencode(form).encode() if form is not None else None
        headers = {"Cookie": self.cookie} if self.cookie else {}
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        for attempt in (1, 2):
            try:
                self.conn.request(method, path, body=body, headers=headers)
                resp = self.conn.getresponse()
                data = resp.read()
                break
            except (http.client.HTTPException, OSError):
                self.conn.close()
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
                if attempt == 2:
                    return 0, b""
        self.retry_after = 0.0
        for name, value in resp.getheaders():
            if name.lower() == "set-cookie" and value.startswith("session="):
                self.cookie = value.split(";", 1)[0]
            if name.lower() == "retry-after" and value.isdigit():
                self.retry_after = float(value)
        return resp.status, data

    def request_with_wait(self, method: str, path: str) -> tuple[int, bytes, float]:
        """``(status, body, Retry-After seconds or 0)``."""
        status, body = self.request(method, path)
        return status, body, self.retry_after

    def login_form(self) -> str:
        _, page = self.request("GET", "/-/admin/login")
        found = CSRF.search(page.decode())
        assert found, "no CSRF token on the login page"
        return found.group(1)


# -- the server under test ----------------------------------------------------------


def _python(code: Path) -> str:
    return str(code / ".venv" / "bin" / "python")


def _env(settings: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BIBLIO_")}
    env.update(
        BIBLIO_SETTINGS=str(settings),
        BIBLIO_SECRET_KEY="bench-only-secret",
        BIBLIO_LOG_LEVEL="WARNING",
    )
    return env


def _knows(code: Path, key: str) -> bool:
    out = subprocess.run(
        [_python(code), "-m", "biblio", "settings"],
        cwd=code.parent,
        capture_output=True,
        text=True,
        check=False,
    )
    return key in out.stdout


def web_settings(
    code: Path, folder: Path, name: str, zotero_url: str, group_id: int, **auth: object
) -> Path:
    """A settings file ``name`` for ``code`` (only the keys it knows) in ``folder``."""
    lines = [
        "[zotero]",
        f"library_id = {group_id}",
        f'base_url = "{zotero_url}"',
        "[database]",
        f'url = "sqlite:///{folder / "biblio.sqlite3"}"',
        "[sync]",
        f'lock_file = "{folder / "sync.lock"}"',
        "prerender = false",
        "[mail]",
        "enabled = false",
        "[auth]",
    ]
    for key, value in auth.items():
        if key == "account_failures" and not _knows(code, key):
            continue
        lines.append(f"{key} = {json.dumps(value)}")
    path = folder / f"{name}.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def web_prepare(code: Path, items: int) -> tuple[Path, StandinServer]:
    """A synced cache of ``items`` synthetic items made by ``code``'s own ``biblio sync``,
    with one owner; returns its folder and the (running) stand-in."""
    folder = SCRATCH / f"load-{code.name}-{items}"
    folder.mkdir(parents=True, exist_ok=True)
    lib = synthetic_library(items, seed=11)
    zotero = StandinServer(lib).__enter__()
    conf = web_settings(code, folder, "sync", zotero.url, lib.group_id)
    if not (folder / "synced").exists():
        for old in folder.glob("biblio.sqlite3*"):
            old.unlink()
        started = time.monotonic()
        run = [_python(code), "-m", "biblio", "sync"]
        subprocess.run(run, env=_env(conf), cwd=folder, check=True, capture_output=True)
        add = [_python(code), "-m", "biblio", "owners", "add", OWNER, "--password-stdin"]
        subprocess.run(
            add, env=_env(conf), cwd=folder, input=PASSWORD + "\n", text=True, check=True
        )
        (folder / "synced").write_text("ok\n")
        print(f"# synced {items} items with {code} in {time.monotonic() - started:.0f} s")
    return folder, zotero


@contextmanager
def web_server(code: Path, settings: Path) -> Iterator[int]:
    """``biblio run`` with its defaults (two gunicorn workers); yields its port."""
    port = free_port()
    command = [_python(code), "-m", "biblio", "run", "--port", str(port)]
    proc = subprocess.Popen(
        command,
        env=_env(settings),
        cwd=settings.parent,  # not this checkout: `python -m` would import biblio from here
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(600):
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
        Visitor(port).request("GET", "/items")  # both workers import lazily: warm one
        yield port
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()


# -- measurements -------------------------------------------------------------------


def web_parallel_logins(port: int, n: int = 24) -> Counter[int]:
    """``n`` wrong-password logins to one owner at once: answers by status."""
    visitors = [Visitor(port) for _ in range(n)]
    tokens = [v.login_form() for v in visitors]
    barrier, statuses = threading.Barrier(n), Counter[int]()

    def attempt(visitor: Visitor, token: str) -> None:
        barrier.wait()
        form = {"email": OWNER, "password": "wrong guess", "csrf_token": token}
        statuses[visitor.request("POST", "/-/admin/login", form)[0]] += 1

    pairs = zip(visitors, tokens, strict=True)
    threads = [threading.Thread(target=attempt, args=pair) for pair in pairs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return statuses


def web_login_timing(port: int, samples: int) -> dict[str, float]:
    """Median milliseconds of a failed login per kind, interleaved so that load on the
    machine falls on every kind alike."""
    kinds = {
        "unknown email": ("nobody-here@example.org", "some password"),
        "owner, empty password": (OWNER, ""),
        "owner, wrong password": (OWNER, "wrong guess"),
    }
    visitor = Visitor(port)
    token = visitor.login_form()
    times: dict[str, list[float]] = defaultdict(list)
    for _ in range(samples):
        for kind, (email, password) in random.sample(list(kinds.items()), len(kinds)):
            form = {"email": email, "password": password, "csrf_token": token}
            started = time.perf_counter()
            visitor.request("POST", "/-/admin/login", form)
            times[kind].append((time.perf_counter() - started) * 1000)
    return {kind: statistics.median(values) for kind, values in times.items()}


def _samples(folder: Path) -> dict[str, list[str]]:
    with closing(sqlite3.connect(folder / "biblio.sqlite3")) as db:
        keys = [r[0] for r in db.execute("SELECT key FROM items WHERE parent_key IS NULL")]
        titles = [r[0] or "" for r in db.execute("SELECT title FROM items LIMIT 2000")]
        years = [str(r[0]) for r in db.execute("SELECT DISTINCT year FROM items") if r[0]]
    words = sorted({w.lower() for t in titles for w in re.findall(r"[A-Za-z]{5,}", t)})
    return {"keys": keys, "words": words[:300], "years": years}


def _mix_request(rng: random.Random, s: dict[str, list[str]]) -> tuple[str, str]:
    kind = rng.choice(("list", "search", "item", "export"))
    if kind == "list":
        args = {"_sort": rng.choice(["added", "-added", "title", "year", "-year"])}
        if rng.random() < 0.5:
            args["year"] = rng.choice(s["years"])
        return kind, "/items?" + urlencode(args)
    if kind == "search":
        return kind, "/items?" + urlencode({"q": rng.choice(s["words"])})
    if kind == "item":
        return kind, f"/items/{rng.choice(s['keys'])}"
    suffix = rng.choice(("bib", "ris", "csv"))
    return kind, f"/items.{suffix}?" + urlencode({"year": rng.choice(s["years"])})


def web_mix(port: int, folder: Path, clients: int, seconds: float, heavy: int) -> dict:
    """``clients`` looping over the mix for ``seconds`` (and ``heavy`` clients looping on
    an uncached-style bibliography): counts, errors and latencies per page kind."""
    samples = _samples(folder)
    stop = time.monotonic() + seconds
    latencies: dict[str, list[float]] = defaultdict(list)
    errors: Counter[str] = Counter()
    heavy_answers: Counter[str] = Counter()
    lock = threading.Lock()

    def client(n: int) -> None:
        rng, visitor = random.Random(n), Visitor(port)
        while time.monotonic() < stop:
            kind, path = _mix_request(rng, samples)
            started = time.perf_counter()
            status, _ = visitor.request("GET", path)
            elapsed = time.perf_counter() - started
            with lock:
                latencies[kind].append(elapsed)
                if status != 200:
                    errors[f"{kind} {status}"] += 1

    def bibliography(n: int) -> None:
        # Each heavy client keeps one uncached style in the making: it asks, follows the
        # "being prepared" answers (202, Retry-After) until the style is served, then
        # moves on to its next style, so six uncached styles are always wanted.
        visitor = Visitor(port, timeout=600)
        styles = HEAVY_STYLES[n % len(HEAVY_STYLES) :: heavy] or HEAVY_STYLES[:1]
        turn = 0
        while time.monotonic() < stop:
            style = styles[turn % len(styles)]
            started = time.perf_counter()
            status, _, wait = visitor.request_with_wait("GET", f"/bibliography?_style={style}")
            with lock:
                latencies["bibliography"].append(time.perf_counter() - started)
                if status == 202:
                    heavy_answers["202 preparing"] += 1
                elif status == 200:
                    heavy_answers["200 served"] += 1
                else:
                    errors[f"bibliography {status}"] += 1
            if status == 202:
                time.sleep(min(wait or 5, max(0.0, stop - time.monotonic())))
            else:
                turn += 1

    mixers = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    # Daemons: a bibliography still rendering when the window closes is not waited for
    # (on slow code one takes many minutes); it is reported as unfinished.
    heavies = [threading.Thread(target=bibliography, args=(n,), daemon=True) for n in range(heavy)]
    started = time.monotonic()
    for t in mixers + heavies:
        t.start()
    for t in mixers:
        t.join()
    for t in heavies:
        t.join(max(0.0, stop + 5 - time.monotonic()))
    wall = time.monotonic() - started
    if heavy:
        errors["bibliography unfinished at the end"] = sum(t.is_alive() for t in heavies)
    done = sum(len(v) for k, v in latencies.items() if k != "bibliography")
    return {
        "throughput": done / seconds,
        "wall": wall,
        "errors": dict(errors),
        "heavy": dict(heavy_answers),
        "kinds": {
            kind: {
                "n": len(values),
                "p50_ms": 1000 * statistics.median(values),
                "p95_ms": 1000 * statistics.quantiles(values, n=20)[-1]
                if len(values) > 1
                else 1000 * values[0],
            }
            for kind, values in sorted(latencies.items())
        },
    }


def web_fuzz(run: bool) -> dict[str, int] | None:
    """The fuzz's request and 5xx counts (from its last run, or run it now)."""
    if run:
        subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-n", "2", "tests/test_fuzz.py"],
            cwd=ROOT,
            check=False,
        )
    reports = list((ROOT / "test-artifacts").glob("fuzz-*.json"))
    if not reports:
        return None
    figures = [json.loads(p.read_text()) for p in reports]
    return {
        "requests": sum(f["requests"] for f in figures),
        "errors_5xx": sum(f["errors_5xx"] for f in figures),
    }


def _forget_renders(folder: Path) -> None:
    with closing(sqlite3.connect(folder / "biblio.sqlite3")) as db:
        db.execute("DELETE FROM rendered_citations")
        db.commit()


def _print_mix(title: str, result: dict) -> None:
    print(f"\n{title}: {result['throughput']:.1f} requests/s (wall {result['wall']:.0f} s)")
    print(f"  errors: {result['errors'] or 'none'}")
    if result.get("heavy"):
        print(f"  bibliography answers: {result['heavy']}")
    for kind, f in result["kinds"].items():
        print(f"  {kind:<13} n={f['n']:>6}  p50 {f['p50_ms']:8.0f} ms  p95 {f['p95_ms']:8.0f} ms")


def web_main(args: argparse.Namespace) -> None:
    code = Path(args.code).resolve()
    folder, zotero = web_prepare(code, args.items)
    try:
        print(f"# web half: {code} ({args.items} items, biblio run defaults, SQLite)")
        # The login limit is raised so that 24 logins reach the lockout they measure.
        conf = web_settings(
            code,
            folder,
            "logins",
            zotero.url,
            zotero.library.group_id,
            login_rate_limit="1000 per minute",
        )
        with web_server(code, conf) as port:
            statuses = web_parallel_logins(port)
        print(f"\n24 parallel wrong-password logins: {dict(sorted(statuses.items()))}")
        print(f"  5xx: {sum(n for s, n in statuses.items() if s >= 500)}")
        conf = web_settings(
            code,
            folder,
            "timing",
            zotero.url,
            zotero.library.group_id,
            login_rate_limit="100000 per minute",
            lockout_failures=1_000_000,
            account_failures=1_000_000,
        )
        with web_server(code, conf) as port:
            medians = web_login_timing(port, args.login_samples)
        print(f"\nfailed login, median of {args.login_samples} each:")
        for kind, ms in medians.items():
            print(f"  {kind:<24} {ms:7.1f} ms")
        base = web_settings(code, folder, "mix", zotero.url, zotero.library.group_id)
        _forget_renders(folder)  # every heavy style starts uncached, run after run
        with web_server(code, base) as port:
            _print_mix(
                f"mix, {args.clients} clients, {args.seconds:.0f} s",
                web_mix(port, folder, args.clients, args.seconds, heavy=0),
            )
            _print_mix(
                f"mix with {args.heavy} clients wanting uncached-style bibliographies",
                web_mix(port, folder, args.clients, args.seconds, heavy=args.heavy),
            )
    finally:
        zotero.__exit__(None, None, None)
    fuzz = web_fuzz(args.fuzz)
    print(f"\nfuzz: {fuzz if fuzz else 'no report in test-artifacts/ (run with --fuzz)'}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="bench/load.py web", description=__doc__.split("\n\n")[0])
    parser.add_argument("--code", default=str(ROOT), help="checkout to measure (its .venv)")
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--heavy", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--login-samples", type=int, default=40)
    parser.add_argument("--fuzz", action="store_true", help="run the fuzz first")
    web_main(parser.parse_args(argv))


if __name__ == "__main__":
    main()
