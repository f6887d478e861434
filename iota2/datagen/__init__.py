"""Generators of synthetic but realistic input data (satellite products, ground truth) for demos and tests."""
