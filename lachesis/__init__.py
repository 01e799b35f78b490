"""The single `lachesis` command line; the substance lives in the top-level packages."""
