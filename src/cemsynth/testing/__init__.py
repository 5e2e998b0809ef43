"""Tools for testing cemsynth itself (the fuzz campaign of the command line)."""
