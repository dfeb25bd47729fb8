"""What every kiosk screen shares: access to the app (flow, texts, metrics) and its own `.kv` file."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from kivy.app import App
from kivy.lang import Builder
from kivy.uix.screenmanager import Screen

from kiosk_app.ui.widgets import CardButton, FitLabel, Flag

if TYPE_CHECKING:
    from kiosk_app.ui.app import KioskApp


def load_kv(module_file: str) -> None:
    """Load the `.kv` file named like the screen's module."""
    Builder.load_file(str(Path(module_file).with_suffix(".kv")))


class KioskScreen(Screen):  # type: ignore[misc]
    """A thin screen: it calls the flow's methods and draws `flow.state` / `flow.session`."""

    @property
    def kiosk(self) -> KioskApp:
        return cast("KioskApp", App.get_running_app())

    def refresh(self) -> None:
        """Redraw from the flow's session (on entering the screen and when the language changes)."""

    def spoken_text(self) -> str:
        """What the read-aloud button says on this screen."""
        return ""


class FlagButton(CardButton):
    """A language: its flag and its own name."""

    def __init__(self, language: str, name: str, **kwargs: Any) -> None:
        metrics = cast("KioskApp", App.get_running_app()).m
        # in portrait the flags share a narrow row: the name goes under the flag
        super().__init__(orientation="vertical" if metrics.portrait else "horizontal", **kwargs)
        self.language = language
        self.add_widget(Flag(language=language, size_hint=(1, 0.45) if metrics.portrait else (0.4, 1)))
        label = FitLabel(text=name, bold=True, halign="center" if metrics.portrait else "left")
        label.size_hint = (1, 0.55) if metrics.portrait else (0.6, 1)
        self.add_widget(label)


def fill_flags(container: Any, screen: KioskScreen) -> None:
    """One flag button per configured language, the current one marked."""
    app = screen.kiosk
    container.clear_widgets()
    for language in app.settings.kiosk.languages:
        button = FlagButton(language, app.translator.language_name(language))
        button.selected = language == app.language
        button.bind(on_release=lambda button: app.choose_language(button.language))
        container.add_widget(button)
