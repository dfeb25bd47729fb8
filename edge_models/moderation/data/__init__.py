"""Word lists of the moderation (a package so that the lists ship in wheels)."""
