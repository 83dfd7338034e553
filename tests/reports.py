"""Figures that suites measure on the real services (fault recovery, load), shown in pytest's summary."""
from __future__ import annotations

SECTIONS: dict[str, list[str]] = {}


def show(title: str, lines: list[str]) -> None:
    SECTIONS[title] = lines
