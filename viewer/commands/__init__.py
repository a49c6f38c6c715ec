"""Subcommands of the `radview` CLI, one module each (NAME, HELP, add_arguments, run)."""
