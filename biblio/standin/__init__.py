"""A local stand-in for the Zotero Web API v3: a real HTTP server on loopback.

pyzotero talks to it unchanged, so tests, benchmarks and the offline demo sync the
way they would from api.zotero.org: ``server`` (the HTTP server and its fault modes),
``api`` (endpoints and access checks), ``library`` (a versioned, in-memory group
library), ``params`` and ``query`` (query parameters, paging, filtering, sorting) and
``synthetic`` (deterministic synthetic libraries of any size).
"""
