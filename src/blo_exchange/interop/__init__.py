"""Interoperability with other intelligence tools: the STIX 2.1 mapping of alerts.

Pure: imports ``domain`` and the standard library only, so the TAXII server (``api``) and the
offline export (``cli``) produce the same objects from the same decrypted feed items.
"""
