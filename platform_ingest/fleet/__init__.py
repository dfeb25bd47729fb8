"""Fleet: what the terminals report of themselves (their latest Status), and the alerts computed from it."""
