"""SVG charts: well-formed XML, one mark per count with the right value and size, text
escaped, nothing that could load or run anything."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from sprava.publish.chart import Series, bar_chart, column_chart, nice_ticks

SVG = "{http://www.w3.org/2000/svg}"
HOSTILE = '<script>alert("x")</script> & "quotes" \u2028'


def _parse(text: str) -> ET.Element:
    root = ET.fromstring(text.encode("utf-8"))  # noqa: S314  (our own output)
    assert root.tag == f"{SVG}svg"
    return root


def _marks(root: ET.Element) -> list[ET.Element]:
    return [e for e in root.iter(f"{SVG}rect") if "data-value" in e.attrib]


def _no_active_content(text: str, root: ET.Element) -> None:
    tags = {e.tag.removeprefix(SVG) for e in root.iter()}
    assert tags <= {"svg", "title", "desc", "rect", "line", "text", "g"}, tags
    assert "href" not in text
    assert text.count("http") == 1  # the namespace only
    assert not any(k.startswith("on") for e in root.iter() for k in e.attrib)


def test_bar_chart_counts_and_lengths() -> None:
    bars = [("Minsk", 12), ("Brest", 3), ("Hrodna", 0), (HOSTILE, 7)]
    svg = bar_chart("By region", bars, desc="How many", empty="none")
    root = _parse(svg.text)
    _no_active_content(svg.text, root)
    marks = _marks(root)
    assert [(m.get("data-label"), int(m.get("data-value", ""))) for m in marks] == bars
    widths = [float(m.get("width", "")) for m in marks]
    assert widths[2] == 0
    assert widths[0] / widths[1] == pytest.approx(12 / 3, rel=0.02)
    assert widths[3] / widths[1] == pytest.approx(7 / 3, rel=0.02)
    assert root.findtext(f"{SVG}title") == "By region"
    assert root.findtext(f"{SVG}desc") == "How many"
    assert (svg.width, svg.height) == (int(root.get("width", "")), int(root.get("height", "")))
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert "12" in texts
    assert "Minsk" in texts
    assert "<script>" not in svg.text
    assert "&lt;script&gt;" in svg.text


def test_bar_chart_shortens_long_labels_but_keeps_them_whole_in_titles() -> None:
    label = "Катаванні або жорсткае абыходжанне, і яшчэ вельмі доўгая назва"
    root = _parse(bar_chart("t", [(label, 2)], desc="d", empty="e").text)
    shown = [t.text or "" for t in root.iter(f"{SVG}text")]
    assert any(s.endswith("…") and len(s) <= 40 for s in shown)
    assert any((t.text or "").startswith(label) for t in root.iter(f"{SVG}title"))


def test_column_chart_stacks_each_series() -> None:
    months = ["2020-08", "2020-09", "2020-10", "2020-11"]
    series = [Series("reported", (1, 0, 0, 4)), Series("corroborated", (2, 1, 0, 0)),
              Series("verified", (5, 0, 0, 1))]
    svg = column_chart("Over time", months, series, desc="d", empty="e")
    root = _parse(svg.text)
    _no_active_content(svg.text, root)
    groups = [g for g in root.iter(f"{SVG}g") if g.get("class") == "column"]
    assert [(g.get("data-label"), int(g.get("data-total", ""))) for g in groups] == [
        ("2020-08", 8), ("2020-09", 1), ("2020-10", 0), ("2020-11", 5)]
    found = {(m.get("data-series"), months[i]): int(m.get("data-value", ""))
             for i, g in enumerate(groups) for m in _marks(g)}
    expected = {(s.name, months[i]): v for s in series for i, v in enumerate(s.values) if v}
    assert found == expected
    first = _marks(groups[0])
    heights = [float(m.get("height", "")) for m in first]
    assert heights[2] / heights[0] == pytest.approx(5, rel=0.02)
    ys = [float(m.get("y", "")) for m in first]
    assert ys == sorted(ys, reverse=True)  # stacked upwards, first series at the bottom
    assert ys[1] + heights[1] == pytest.approx(ys[0], abs=0.11)


def test_column_chart_thins_axis_labels_of_many_months() -> None:
    months = [f"{2010 + i // 12}-{i % 12 + 1:02d}" for i in range(120)]
    svg = column_chart("t", months, [Series("all", tuple(range(120)))], desc="d", empty="e")
    root = _parse(svg.text)
    axis = [t for t in root.iter(f"{SVG}text") if t.get("class") == "tick"
            and "-" in (t.text or "")]
    assert 5 <= len(axis) <= 15
    assert len([g for g in root.iter(f"{SVG}g") if g.get("class") == "column"]) == 120


def test_empty_charts_say_so() -> None:
    for svg in (bar_chart("t", [], desc="d", empty="Nothing yet"),
                column_chart("t", [], [], desc="d", empty="Nothing yet")):
        root = _parse(svg.text)
        assert "Nothing yet" in [t.text for t in root.iter(f"{SVG}text")]
        assert _marks(root) == []


def test_a_series_of_the_wrong_length_is_a_bug() -> None:
    with pytest.raises(ValueError, match="has 1 values for 2 columns"):
        column_chart("t", ["a", "b"], [Series("s", (1,))], desc="d", empty="e")


@pytest.mark.parametrize(("top", "ticks"), [
    (0, [0, 1]), (1, [0, 1]), (2, [0, 1, 2]), (7, [0, 2, 4, 6, 8]), (12, [0, 5, 10, 15]),
    (100, [0, 20, 40, 60, 80, 100]), (1234, [0, 500, 1000, 1500])])
def test_nice_ticks(top: int, ticks: list[int]) -> None:
    assert nice_ticks(top) == ticks
