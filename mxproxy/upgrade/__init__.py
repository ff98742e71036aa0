"""Taking over an MX Proxy 2.3 install: its bbolt store (``bbolt``), the import into our store
(``importer``)."""
