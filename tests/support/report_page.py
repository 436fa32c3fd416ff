"""Reading the model report's page back: its sections' text and anything it would fetch."""

from __future__ import annotations

from html.parser import HTMLParser

SECTIONS = ["policies", "gate", "groups", "cost-curve", "roc-calibration", "importance", "monotone", "champion",
            "thresholds"]


class Page(HTMLParser):
    """Section ids, each section's text, and every attribute that could fetch something."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.sections: dict[str, str] = {}
        self.fetching: list[tuple[str, str]] = []
        self.tags: list[str] = []
        self._section: str | None = None
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        values = dict(attrs)
        if tag == "section":
            self._section = values["id"]
            self.sections[str(self._section)] = ""
        for name, value in attrs:
            if name in {"src", "href", "xlink:href", "data"} and value and not value.startswith("#"):
                self.fetching.append((tag, value))

    def handle_endtag(self, tag: str) -> None:
        if tag == "section":
            self._section = None

    def handle_data(self, data: str) -> None:
        if self._section is not None:
            self.sections[self._section] += data
