"""Builders: the chains of steps that turn a configuration into products."""
