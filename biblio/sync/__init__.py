"""Sync: fetch a Zotero library through pyzotero and save it into the local cache.

``client`` wraps pyzotero with biblio's retry policy, ``fetch`` follows Zotero's
sync protocol and returns plain dicts, ``save`` upserts them in one transaction,
``run`` ties a run together under the sync lock, and ``schedule`` runs it every
``[sync] interval_minutes`` with APScheduler. What other packages derive from the
cache follows through :mod:`biblio.events`; sync imports none of them.
"""
