"""Reading a configuration file from a script (:mod:`iota2.configuration_files.read_config_file`)."""
