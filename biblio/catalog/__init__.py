"""The catalog: the read side of the cache, as researchers browse and search it.

``filters`` (one object per filter: parameter, SQL, index mask, phrase), ``sorts``,
``items`` (live items with their effective prongs), ``search`` (the FTS5 index),
``index`` (an in-memory column index for counts and facets), ``facets``, ``listing``
(one page of items and the landing data), ``record`` (one item's page) and ``charts``.
"""
