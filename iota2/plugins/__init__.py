"""Built-in plugins: classifiers (and, later, deep-learning models and feature functions)."""
