"""The word error rate now lives in shipped code (`edge_models.wer`, used by `borne provision check`); this
name stays for the benchmarks that import it from here."""

from edge_models.wer import edit_distance, normalize, wer

__all__ = ["edit_distance", "normalize", "wer"]
