"""The owners' area under ``/-/admin/``: login, the join-request queue and owners' tools.

Each page needs an owner's login (``auth``); ``queue`` works the join requests and
``tools`` holds the audit log, prong overrides and review, and "sync now".
"""
