"""Sync: fetch a Zotero library through pyzotero and save it into the local cache.

``client`` wraps pyzotero with biblio's retry policy and a shared ``throttle`` (how
many requests overlap, and Zotero's Backoff), ``fetch`` follows Zotero's sync
protocol with overlapping requests (``overlap``) and checks every answer
(``checks``), ``stage`` streams what arrives into staging tables and ``apply`` moves
it into the cache in one final transaction, ``run`` ties a run together under the
sync ``lock`` with a patient database ``writer`` (``patience``), and ``schedule`` runs
it every ``[sync] interval_minutes`` with APScheduler. What other packages derive from
the cache follows through :mod:`biblio.events`; sync imports none of them.
"""
