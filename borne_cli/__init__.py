"""The single `borne` command line: one click group, subcommands loaded lazily from each package."""
