"""The kiosk's Kivy touch screens. Only this package imports Kivy, and only in `app`, `widgets`, `screens`."""
