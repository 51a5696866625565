"""The catalog: the read side of the cache, as researchers browse and search it.

``filters`` (one object per filter: parameter, SQL, index mask, phrase), ``sorts``,
``items`` (live items with their effective prongs), ``query`` (the search language,
parsed and compiled), ``search`` (the FTS5 index, relevance and snippets),
``index`` (an in-memory column index for counts and facets), ``facets``, ``listing``
(one page of items and the landing data), ``record`` (one item's page), ``sitemap``
(what search engines are told to index) and ``charts``.
"""
