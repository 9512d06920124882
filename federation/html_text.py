"""Plain text from remote HTML, and HTML from our own plain text.

AS2 carries `content` and `summary` as HTML, both ways. What other servers
write is reduced to text before we store or show it, so that no remote markup
can reach one of our pages; what we write is escaped into paragraphs before
it leaves. Parsing documents and building them both need these, so they live
apart from either.
"""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser

_BLOCK_TAGS = frozenset(
    {"p", "div", "li", "ul", "ol", "blockquote", "pre", "table", "tr", "section"}
    | {"article", "header", "footer", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "dd", "dt"}
)
# Text inside these is never meant for a human reader.
_SKIPPED_TAGS = frozenset({"script", "style", "template", "noscript", "head", "title"})
_HTML_SPACE = re.compile(r"[ \t\n\r\f]+")


class _TextExtractor(HTMLParser):
    """Keeps text and paragraph structure, drops every tag and attribute."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIPPED_TAGS:
            self._skipping += 1
        elif tag == "br":
            self.parts.append("\n")
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n\n")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in _SKIPPED_TAGS:
            self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIPPED_TAGS:
            self._skipping = max(0, self._skipping - 1)
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n\n")

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.parts.append(_HTML_SPACE.sub(" ", data))


def html_to_plain_text(markup: str) -> str:
    """Plain text of remote HTML, for search, previews and our own pages.

    Built on the stdlib parser and keeping no markup at all, so nothing a
    remote server writes can reach a page as HTML. Whitespace collapses the
    way a browser would; paragraphs become blank lines, `<br>` a newline.
    The plain markup nodes send (see `simple_markup_parts`) skips the parser.
    """
    parts = simple_markup_parts(markup)
    if parts is None:
        extractor = _TextExtractor()
        extractor.feed(markup)
        extractor.close()
        parts = extractor.parts
    lines = (line.strip(" ") for line in "".join(parts).split("\n"))
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip("\n")


_BLANK_LINES = re.compile(r"\n{3,}")
# Tags with no attributes, lower case, whose meaning for the text is fixed:
# paragraphs, line breaks, and inline emphasis, which adds nothing.
_SIMPLE_TAG = re.compile(r"<(?:(/?)(p|strong|em|b|i)|(br) ?/?)>")
_SIMPLE_PARTS = {"p": "\n\n", "br": "\n"}


def simple_markup_parts(markup: str) -> list[str] | None:
    """What `_TextExtractor` collects from `markup`, without the parser, when the
    markup holds only the simple tags nodes write (`<p>`, `<br>`, `<strong>`,
    `<em>`, `<b>`, `<i>`, no attributes) and text; None for anything else.

    Parsing a listing's note with `HTMLParser` cost as much as the rest of
    mirroring it. Text between these tags is what the parser hands on (char
    references resolved by the same `html.unescape`); any other `<` (another
    tag, a comment, a stray bracket) leaves the work to the parser.
    """
    pieces = _SIMPLE_TAG.split(markup)
    # split() gives text, then the three groups of each tag, then text again.
    parts: list[str] = []
    for at in range(0, len(pieces), 4):
        text = pieces[at]
        if text:
            if "<" in text:
                return None
            parts.append(_HTML_SPACE.sub(" ", html.unescape(text) if "&" in text else text))
        if at + 1 < len(pieces):
            tag = pieces[at + 2] or pieces[at + 3]
            if tag in _SIMPLE_PARTS:
                parts.append(_SIMPLE_PARTS["br" if tag == "br" else "p"])
    return parts


def plain_text_to_html(text: str) -> str:
    """AS2 `content` is HTML: escape the text, blank lines make paragraphs."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    paragraphs = []
    for block in re.split(r"\n[ \t]*\n", text):
        lines = [html.escape(line.strip(), quote=False) for line in block.split("\n")]
        lines = [line for line in lines if line]
        if lines:
            paragraphs.append("<p>" + "<br>".join(lines) + "</p>")
    return "".join(paragraphs)
