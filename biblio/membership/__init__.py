"""Membership: join requests to the group, the owners who decide them, and their email.

``requests`` (submission, status links, owners' decisions, CSV), ``group`` (the
member list the cache holds), ``reconcile`` (each sync confirms approved applicants),
``messages`` (the emails' text), ``owners`` (owner accounts and password checks),
``digests`` (the owners' reminder digest and outbox jobs) and ``cli``.
"""
