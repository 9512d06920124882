"""Sample data for `commons-node demo`: communities, people, listings and a history of
exchanges, generated from seeded random choices so every fresh demo looks the same.

`plan.build_plan()` is pure (no database, no network); `node.demo` writes what it
returns into the nodes and lets federation carry it between them.
"""
