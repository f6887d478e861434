"""Example iota2 plugin package: the TempCNN network for ``arg_train.deep_learning_parameters``."""
