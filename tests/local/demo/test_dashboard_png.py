"""The demo's dashboard picture: legends filled like Grafana's, the layout, and a PNG drawn
from panel data (the live path runs in the demo's end-to-end test)."""

from __future__ import annotations

from pathlib import Path

from local.demo.dashboard_png import Line, PanelData, draw, layout, legend


def test_legend_fills_labels_like_grafana() -> None:
    """`{{label}}` takes the series' label value; a missing label renders empty."""
    assert legend("{{model}} → {{ engine }}", {"model": "m", "engine": "e0"}) == "m → e0"
    assert legend("{{pod}} p95", {}) == " p95"


def test_layout_puts_two_panels_per_row() -> None:
    """11 panels need 6 rows of 2; none still draws one row."""
    assert layout(11) == (6, 2) and layout(0) == (1, 2)


def test_draw_writes_a_png(tmp_path: Path) -> None:
    """Panels with and without data draw into one PNG file."""
    line = Line(legend="a", times=(1.0, 2.0), values=(0.1, 0.2))
    panels = [PanelData(title="with", unit="s", lines=(line,)),
              PanelData(title="without", unit="percentunit", lines=())]
    draw(panels, "t", tmp_path / "d.png")
    assert (tmp_path / "d.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
