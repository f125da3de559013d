"""One rounding and one LaTeX style for every table: the main table and flops.tex."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from dfbench.cli.flops import latex_table, rich_table
from dfbench.formatting import booktabs, format_number, round_half_up, tex_escape


@pytest.mark.parametrize(
    "value, decimals, expected, float_rounding",
    [
        (0.125, 2, "0.13", "0.12"),  # exact in binary: f-strings round half to even
        (2.675, 2, "2.68", "2.67"),  # stored just below 2.675: f-strings round down
        (31.25, 1, "31.3", "31.2"),
        (959.5, 0, "960", "960"),
        (-1.005, 2, "-1.01", "-1.00"),
    ],
)
def test_numbers_round_half_up_as_a_reader_does(value, decimals, expected, float_rounding):
    assert f"{value:.{decimals}f}" == float_rounding
    assert format_number(value, decimals) == expected
    assert str(round_half_up(value, decimals)) == expected


def test_missing_values_thousands_and_large_numbers():
    assert format_number(math.nan) == "--" and format_number(None, missing="–") == "–"
    assert format_number(1234567.5, 0, thousands=True) == "1,234,568"
    assert format_number(1e30, 2) == "1" + "0" * 30 + ".00"  # no overflow, no exponent
    assert format_number(1e-9, 2) == "0.00" and format_number(math.inf) == "inf"


def test_tex_escape_and_booktabs():
    assert tex_escape(r"acme_wm & 50% {x} #1 $~^\ ") == (
        r"acme\_wm \& 50\% \{x\} \#1 \$\textasciitilde{}\textasciicircum{}\textbackslash{} "
    )
    tex = booktabs("lr", ["A & B \\\\"], [["a & 1 \\\\"], ["b & 2 \\\\"]], comments=["made here"], footer=["note"])
    assert tex.splitlines() == [
        "% made here", r"\begin{tabular}{lr}", r"\toprule", "A & B \\\\",
        r"\midrule", "a & 1 \\\\", r"\midrule", "b & 2 \\\\", r"\bottomrule", "note", r"\end{tabular}",
    ]


def _flops_frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    components = pd.DataFrame(
        [
            {"model": "acme_wm", "component": "Predictor & head", "repeats": 3, "gflops": 0.125,
             "paper_convention_gflops": 2.675, "reported_gflops": math.nan},
        ]
    )
    totals = pd.DataFrame(
        [
            {"model": "acme_wm", "counted_gflops": 1234.5, "paper_convention_gflops": 2.5,
             "reported_gflops": math.nan, "samples_per_clip": 20, "crops": 2},
        ]
    )
    return components, totals


def test_flops_tex_rounds_like_the_main_table_and_escapes_names():
    tex = latex_table(*_flops_frames())
    assert r"Predictor \& head & 3 & 0.13 & 2.68 & -- \\" in tex
    assert r"Total (2 crops $\times$ 20 samples) &  & 1235 & 3 & -- \\" in tex
    assert r"\textit{acme\_wm}" in tex
    assert tex.startswith(r"% dfbench flops; needs \usepackage{booktabs}" + "\n\\begin{tabular}{lrrrr}\n\\toprule")


def test_flops_terminal_table_uses_the_same_numbers():
    from rich.console import Console

    console = Console(width=200, record=True, color_system=None)
    console.print(rich_table(*_flops_frames()))
    text = console.export_text()
    assert "0.13" in text and "2.68" in text and "1,235" in text
