"""Kivy UI tests: each scenario runs `driver.py` in its own process (one Kivy window per process)."""
