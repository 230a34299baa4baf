"""Command line: thin commands that parse, build a config, call the library, print."""
