"""`borne moderate`: moderate French comments read one per line on standard input."""

from __future__ import annotations

import json
import logging
from typing import BinaryIO

import click

from edge_models.moderation.moderator import moderate as moderate_text
from edge_models.moderation.moderator import warm_up

logger = logging.getLogger(__name__)


@click.command(name="moderate")
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Write one JSON object per line: text, redactions (kind, start, end, token), insults, counts.",
)
@click.argument("source", type=click.File("rb"), default="-")
def moderate(as_json: bool, source: BinaryIO) -> None:
    """Remove insults and personal data from French comments, one per line.

    Reads SOURCE (default: standard input) as UTF-8, one comment per line, and writes the moderated
    comments in the same order: plain text by default, or JSON lines with --json. Offsets in
    "redactions" are character offsets in the input line.
    """
    warm_up()
    count = 0
    raw: bytes
    for number, raw in enumerate(source, start=1):
        try:
            line = raw.decode("utf-8").rstrip("\r\n")
        except UnicodeDecodeError as error:
            raise click.ClickException(f"line {number} is not valid UTF-8 ({error.reason})") from error
        result = moderate_text(line)
        if as_json:
            click.echo(json.dumps(result.as_dict(), ensure_ascii=False))
        else:
            click.echo(result.text)
        count += 1
    logger.info("moderated %d comments", count)
