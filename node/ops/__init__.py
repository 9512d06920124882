"""Running a node in production: health and readiness, metrics, structured logs.

Nothing here changes what a node does for its members or other nodes; it
tells the operator how the node is doing.
"""
