"""A tour of every screen, driven through the flow on a hand-moved clock, with no speech model: what the
layout tests measure and what `borne kiosk --demo --contact-sheets` photographs.

`capture(name)` is called on each screen once it is shown; it yields the waits it needs (a settled
frame, a screenshot). The comment shown on review is a sample as long as a 60 s comment, in the
visit's language, so the review's pages are seen too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from kiosk_app.flow import ManualClock, State
from kiosk_app.ui.script import Script, until
from sync_agent.contract import Comment, ComponentState, Rating

if TYPE_CHECKING:
    from kiosk_app.ui.app import KioskApp

# About what a person says in 60 s (130 words), in each shipped language.
SAMPLE_COMMENTS = {
    "fr": (
        "Très bon accueil, la conseillère a pris le temps de tout m'expliquer pour ma demande de retraite, "
        "mais l'attente était longue et il faudrait plus de créneaux le samedi matin pour ceux qui travaillent "
        "en semaine. J'étais venue une première fois il y a deux semaines et il manquait un papier, personne "
        "ne me l'avait dit au téléphone. Cette fois tout était prêt et le dossier est parti. Les bureaux sont "
        "propres, on peut s'asseoir, il y a de quoi imprimer, c'est bien. Par contre l'ordinateur en libre "
        "service était en panne et il n'y avait qu'une seule personne pour tout le monde ce matin. Je "
        "reviendrai pour la carte grise de mon fils. Merci encore pour votre aide précieuse avec le dossier."
    ),
    "en": (
        "Very friendly welcome, the adviser took the time to explain everything about my pension claim, but "
        "the wait was long and there should be more slots on Saturday mornings for those of us who work "
        "during the week. I came a first time two weeks ago and a document was missing, nobody had told me "
        "on the phone. This time everything was ready and the file has gone. The offices are clean, you can "
        "sit down, you can print, that is good. But the self-service computer was broken and there was only "
        "one person for everybody this morning. I will come back for my son's car registration. Thank you "
        "again for your precious help with the file."
    ),
    "es": (
        "Muy buena acogida, la asesora se tomó el tiempo de explicarme todo sobre mi solicitud de jubilación, "
        "pero la espera fue larga y haría falta más horarios el sábado por la mañana para quienes trabajan "
        "entre semana. Vine una primera vez hace dos semanas y faltaba un papel, nadie me lo había dicho por "
        "teléfono. Esta vez todo estaba listo y el expediente ya salió. Las oficinas están limpias, uno se "
        "puede sentar, se puede imprimir, está bien. En cambio el ordenador de libre servicio estaba "
        "averiado y solo había una persona para todos esta mañana. Volveré para el permiso de circulación "
        "de mi hijo. Gracias otra vez por su valiosa ayuda con el expediente."
    ),
}
REVIEW_WARNING_SHOWN_S = 9  # the review's countdown as photographed


def sample_comment(language: str) -> str:
    return SAMPLE_COMMENTS.get(language, SAMPLE_COMMENTS["fr"])


def tour(app: KioskApp, clock: ManualClock, capture: Callable[[str], Script]) -> Script:
    """Attract, rating, each follow-up, the voice offer, listening, review (its first page, then its
    countdown), review when nothing was heard, thanks, the closed screen, the technician's PIN pad and screen."""
    from kiosk_app.ui.app import TECHNICIAN, TECHNICIAN_GATE

    yield until(lambda: app.runtime.model != ComponentState.LOADING, "the model state", 60)
    app.runtime.model = app.runtime.microphone = ComponentState.OK  # offer voice: these screens are drawn too
    app._start_listener = lambda: None  # type: ignore[method-assign]  # listening without a voice session
    flow = app.flow
    language = flow.session.language
    comment = sample_comment(language)

    def step() -> None:
        clock.advance(app.settings.kiosk.debounce_s + 0.1)

    yield from capture("attract")
    step()
    flow.touch()
    yield from capture("rating")
    step()
    flow.rate(Rating.VERY_DISSATISFIED)
    index = 0
    while flow.state == State.FOLLOW_UP:
        index += 1
        yield from capture(f"follow_up_{index}")
        step()
        flow.answer(None)
    yield from capture("voice_offer")
    step()
    flow.accept_voice()
    listening = app.screen(State.LISTENING)
    flow.voice_partial(comment)  # near the end of 60 s of speech: the latest words show
    listening.live_text = comment
    listening.level = 0.6
    yield from capture("listening")
    flow.voice_final(Comment(text=comment, language=language, asr_model="sample", confidence=0.9))
    yield from capture("review")
    review = app.screen(State.REVIEW)
    clock.advance(app.settings.kiosk.review_timeout_s - REVIEW_WARNING_SHOWN_S)  # the countdown before it times out
    yield until(lambda: review.seconds_left == REVIEW_WARNING_SHOWN_S, "the review's countdown")
    yield from capture("review_countdown")
    flow.still_here()
    step()
    flow.redo()
    flow.voice_nothing_heard()
    yield from capture("review_nothing_heard")
    step()
    flow.send()
    yield from capture("thanks")
    clock.advance(app.settings.kiosk.thanks_timeout_s + 1)
    yield until(lambda: flow.state == State.ATTRACT, "attract after thanks")
    every_day = app.settings.kiosk
    flow.reconfigure(every_day.model_copy(update={"opening_hours": {"sun": ["00:00-00:01"]}}))  # closed now
    yield from capture(State.CLOSED)
    flow.reconfigure(every_day)
    if app.open_technician_gate():
        yield from capture(TECHNICIAN_GATE)
        app._show(TECHNICIAN)  # as after the right PIN
        yield from capture(TECHNICIAN)
        app.close_technician()
