import wave

from edge_models.samples import FRENCH_SAMPLE, FRENCH_SAMPLE_TEXT


def test_the_bundled_sample_is_16_khz_mono_speech_with_its_reference_text() -> None:
    with wave.open(str(FRENCH_SAMPLE)) as clip:
        assert (clip.getframerate(), clip.getnchannels(), clip.getsampwidth()) == (16000, 1, 2)
        assert clip.getnframes() / clip.getframerate() > 1.0
    assert FRENCH_SAMPLE_TEXT.split()[0] == "Le"


def test_the_sample_is_one_of_the_attributed_fixture_clips() -> None:
    fixture = FRENCH_SAMPLE.parents[2] / "tests/fixtures/fr_speech/clips/asterisk_june_queue-holdtime.wav"
    assert FRENCH_SAMPLE.read_bytes() == fixture.read_bytes()
