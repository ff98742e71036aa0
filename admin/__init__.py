"""Admin API (127.0.0.1:8043): apps, connections, tokens, users, push dispatch, health, metrics."""
