"""MX backends: the contract (base), typed errors, the registry and the built-in connectors."""
