"""The node's domain: the visibility rule, typed states, conversions and the URL scheme.

Beneath `services/` and `protocol/`, above `storage/` and `federation/`:
nothing here imports from `api/`, `web/`, `services/` or `protocol/`.
"""
