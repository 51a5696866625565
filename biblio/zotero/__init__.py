"""What biblio knows of Zotero's data model, independent of any sync or page.

``schema`` (Zotero's own item types, fields and labels), ``keys`` (the object key
alphabet), ``csljson`` (Zotero items to CSL-JSON, after Zotero's mapping),
``connector`` (COinS and Highwire metadata the Zotero Connector reads) and
``richtext`` (Zotero rich text and notes, sanitized).
"""
