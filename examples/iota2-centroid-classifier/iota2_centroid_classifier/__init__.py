"""Example iota2 plugin package."""
