from bench.asr import complete_text_at


def test_the_text_is_complete_when_it_last_became_the_final_text() -> None:
    partials = [
        (1.0, "bonjour"),
        (2.0, "bonjour madame"),
        (3.0, "bonjour"),
        (4.0, "bonjour madame"),
        (5.0, "bonjour madame"),
    ]
    assert complete_text_at(partials, "bonjour madame", default=9.0) == 4.0


def test_without_a_matching_partial_the_final_event_time_counts() -> None:
    assert complete_text_at([(1.0, "bonjour")], "bonjour madame", default=9.0) == 9.0
    assert complete_text_at([], "", default=9.0) == 9.0
