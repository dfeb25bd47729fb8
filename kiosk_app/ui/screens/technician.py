"""The technician's screens: a PIN pad, then identity, outbox, model and microphone states, a live
microphone level test, the software version. Opened by a hidden gesture on the attract screen."""

from __future__ import annotations

from typing import Any

from kivy.properties import BooleanProperty, NumericProperty, StringProperty

from kiosk_app.technician import PinCheck, TechnicianReport
from kiosk_app.ui.screens.base import KioskScreen, load_kv
from kiosk_app.ui.widgets import FitLabel, KioskButton

MAX_PIN_DIGITS = 12


class TechLabel(FitLabel):
    """A label of the technician's screens (its floor is set in technician.kv)."""


class TechnicianGateScreen(KioskScreen):
    entered = StringProperty("")
    message = StringProperty("")

    def refresh(self) -> None:
        self.entered = ""
        self.message = ""
        pad = self.ids.pad
        if not pad.children:
            for key in ("1", "2", "3", "4", "5", "6", "7", "8", "9", "clear", "0", "ok"):
                button = KioskButton(text=key if key.isdigit() else self.kiosk.tr(f"tech.{key}"))
                button.key = key
                button.bind(on_release=lambda button: self.press(button.key))
                pad.add_widget(button)

    def press(self, key: str) -> None:
        if key == "clear":
            self.entered = ""
        elif key == "ok":
            outcome = self.kiosk.open_technician(self.entered)
            if outcome != PinCheck.ACCEPTED:
                self.message = self.kiosk.tr("tech.pin_locked" if outcome == PinCheck.LOCKED else "tech.pin_wrong")
            self.entered = ""
        elif len(self.entered) < MAX_PIN_DIGITS:
            self.entered += key
            self.message = ""


class TechnicianScreen(KioskScreen):
    level = NumericProperty(0.0)
    testing = BooleanProperty(False)

    def refresh(self) -> None:
        self.show(self.kiosk.technician_report())

    def show(self, report: TechnicianReport) -> None:
        tr = self.kiosk.tr
        counts = "\n".join(f"{count} {tr('tech.outbox.' + state)}" for state, count in report.outbox_counts.items())
        last_ack = report.last_ack_hour
        rows = [
            (tr("tech.site"), report.site_id),
            (tr("tech.device"), report.device_id),
            (tr("tech.version"), report.software_version),
            (tr("tech.outbox"), report.outbox_problem or counts),
            (tr("tech.last_ack"), last_ack.strftime("%Y-%m-%d %H:00 UTC") if last_ack else tr("tech.never")),
            (tr("tech.model"), tr(f"state.{report.model.value}")),
            (tr("tech.microphone"), tr(f"state.{report.microphone.value}")),
        ]
        grid = self.ids.facts
        grid.clear_widgets()
        for key, value in rows:
            grid.add_widget(TechLabel(text=key, bold=True, size_hint_x=0.42))
            grid.add_widget(TechLabel(text=value, size_hint_x=0.58))
        for label in grid.children:  # each row's share of the height: what its text needs at the smallest size
            label.bind(floor_height=lambda label, height: setattr(label, "size_hint_y", max(1.0, height)))

    def toggle_test(self) -> None:
        if self.testing:
            self.kiosk.stop_level_test()
        else:
            self.kiosk.start_level_test()

    def on_leave(self, *args: Any) -> None:
        self.kiosk.stop_level_test()


load_kv(__file__)
