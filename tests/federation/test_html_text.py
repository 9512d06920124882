"""The fast path for simple markup gives exactly what the stdlib parser gives, and
leaves everything else to the parser."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from federation.builders import listing_content_html
from federation.html_text import _TextExtractor, html_to_plain_text, simple_markup_parts


def parsed_parts(markup: str) -> list[str]:
    extractor = _TextExtractor()
    extractor.feed(markup)
    extractor.close()
    return extractor.parts


def parsed_text(markup: str) -> str:
    """`html_to_plain_text` as it was, with the parser for everything."""
    lines = (line.strip(" ") for line in "".join(parsed_parts(markup)).split("\n"))
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip("\n")


SIMPLE_TAGS = ["<p>", "</p>", "<br>", "<br/>", "<br />", "<strong>", "</strong>"]
SIMPLE_TAGS += ["<em>", "</em>", "<b>", "</b>", "<i>", "</i>"]
OTHER_MARKUP = [
    '<p class="x">',
    "<P>",
    "</br>",
    "<div>",
    "</li>",
    "<a href='https://example.org'>",
    "<!-- note -->",
    "<script>",
    "</script>",
    "<style>",
    "<br  />",
    "<p/>",
    "<",
    "< p>",
    "<![CDATA[x]]>",
    "<!doctype html>",
]
TEXT = [
    "&amp;",
    "&lt;",
    "&gt;",
    "&quot;",
    "&#39;",
    "&#x27;",
    "&nbsp;",
    "&amp",
    "&",
    "&notit;",
    ">",
    " ",
    "  ",
    "\n",
    "\t",
    "\r\n",
    "\f",
    "\xa0",
    "ladder",
    "Ünïcödé",
    "é",
]
simple_markup = st.lists(st.sampled_from(SIMPLE_TAGS + TEXT) | st.text(max_size=8)).map("".join)
any_markup = st.lists(st.sampled_from(SIMPLE_TAGS + OTHER_MARKUP + TEXT) | st.text(max_size=8))


@settings(max_examples=600)
@given(simple_markup)
def test_simple_markup_reads_as_the_parser_reads_it(markup: str) -> None:
    parts = simple_markup_parts(markup)
    if "<" not in _SIMPLE.sub("", markup):
        assert parts is not None
    if parts is not None:
        assert "".join(parts) == "".join(parsed_parts(markup))
    assert html_to_plain_text(markup) == parsed_text(markup)


_SIMPLE = re.compile(r"<(?:/?(?:p|strong|em|b|i)|br ?/?)>")


@settings(max_examples=600)
@given(any_markup.map("".join))
def test_any_markup_gives_the_parsers_text(markup: str) -> None:
    assert html_to_plain_text(markup) == parsed_text(markup)


@given(st.text(max_size=40), st.text(max_size=200))
def test_what_nodes_send_takes_the_fast_path(title: str, description: str) -> None:
    markup = listing_content_html(title, description)
    parts = simple_markup_parts(markup)
    assert parts is not None
    assert html_to_plain_text(markup) == parsed_text(markup)


def test_other_markup_is_left_to_the_parser() -> None:
    for markup in OTHER_MARKUP:
        assert simple_markup_parts(f"<p>before {markup} after</p>") is None
    assert simple_markup_parts("<p>a < b</p>") is None
    hostile = '<p>Hi<script>alert("x")</script> there</p><p class="x">more</p>'
    assert html_to_plain_text(hostile) == "Hi there\n\nmore"
    assert html_to_plain_text("<p><strong>Drill &amp; bits</strong></p><p>one<br>two</p>") == (
        "Drill & bits\n\none\ntwo"
    )
