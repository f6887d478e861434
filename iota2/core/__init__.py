"""The small core of iota2: config, hooks, plugin discovery, task graph, scheduling and I/O helpers.

Nothing in ``iota2.core`` imports a plugin; plugins (built-ins included) are found through the
``iota2`` entry-point group.
"""
