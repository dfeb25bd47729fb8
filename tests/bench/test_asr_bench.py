import io

import click
import numpy as np
import pytest

from bench.asr import complete_text_at, read_items, write_items


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


def test_chunks_close_at_the_first_pause_after_three_seconds() -> None:
    from bench.asr import chunk_bounds

    speech = [{"start": 0, "end": 16000}, {"start": 20000, "end": 50000}, {"start": 52000, "end": 60000}]
    assert chunk_bounds(speech, 70000, 48000, 1600) == [(0, 51600), (50400, 61600)]
    assert chunk_bounds([], 1000, 48000, 1600) == []


def test_the_summary_reports_wer_per_set_and_corpus_latency_and_phantoms() -> None:
    from bench.asr import summarise, table

    def row(set_: str, corpus: str, ref: str, hyp: str, latency: float, language: str = "fr") -> dict[str, object]:
        return {
            "language": language,
            "source": "verify",
            "set": set_,
            "corpus": corpus,
            "name": f"{set_}-{corpus}-{ref}",
            "duration_s": 2.0,
            "reference": ref,
            "text": hyp,
            "latency_after_speech_s": latency,
            "compute_s": 0.5,
        }

    rows = [
        row("clips", "asterisk", "un deux trois quatre", "un deux trois quatre", 0.4),
        row("clips", "fleurs", "un deux", "un", 0.6),
        row("monologues", "asterisk", "bonjour madame", "bonjour madame", 0.5),
        row("non_speech", "synthetic", "", "merci d'avoir regardé", 0.0),
        row("non_speech", "synthetic", "", "", 0.0),
        row("languages", "fleurs_en", "25 years", "twenty-five years", 0.0, "en"),  # digits in its own language
    ]
    summary = summarise({"rows": rows, "peak_rss_mb": 300.0})
    assert summary["wer"]["verify/clips"] == round(1 / 6, 4)
    assert summary["wer"]["verify/clips/fleurs"] == 0.5 and summary["wer"]["verify/clips/asterisk"] == 0.0
    assert summary["wer"]["verify/languages/fleurs_en"] == 0.0
    assert summary["latency_after_speech_p95_s"]["verify/clips"] == 0.59
    assert "verify/non_speech" not in summary["wer"]
    assert summary["phantoms"]["verify/non_speech"] == ["non_speech-synthetic-"]
    assert summary["real_time_factor"] == 0.25
    lines = table({"pipeline": summary, "plain": summary})
    assert lines[0].split() == ["metric", "pipeline", "plain"]
    assert any(line.startswith("WER verify/clips ") and "16.7%" in line for line in lines)
    assert any(line.startswith("phantom texts verify/non_speech") and line.split()[-1] == "1" for line in lines)


def test_items_stream_to_a_child_one_at_a_time_and_intact() -> None:
    items = [
        {"name": "a", "set": "clips", "text": "bonjour à tous", "audio": np.linspace(-1, 1, 1601, dtype=np.float32)},
        {"name": "b", "set": "non_speech", "text": "", "audio": np.zeros(0, dtype=np.float32)},
    ]
    stream = io.BytesIO(write_items(items))
    back = list(read_items(stream))
    assert [i["name"] for i in back] == ["a", "b"]
    assert back[0]["text"] == "bonjour à tous"
    np.testing.assert_array_equal(back[0]["audio"], items[0]["audio"])
    assert len(back[1]["audio"]) == 0


def test_a_stream_cut_short_names_the_item() -> None:
    data = write_items([{"name": "monologue_3", "audio": np.ones(100, dtype=np.float32)}])
    with pytest.raises(click.ClickException, match="monologue_3"):
        list(read_items(io.BytesIO(data[:-10])))
