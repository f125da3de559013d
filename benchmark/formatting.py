"""Number and LaTeX formatting shared by every table dfbench writes.

One place decides how a number is rounded and how text becomes LaTeX, so the main
table, ``flops.tex`` and the terminal never disagree on a digit. Imports nothing
heavy: the CLI's ``--help`` stays fast.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from decimal import ROUND_HALF_UP, Decimal, localcontext

# Enough digits that quantize never overflows for any GFLOPs count or metric.
_PRECISION = 60

_TEX_SPECIAL = {"&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{", "}": r"\}",
                "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "\\": r"\textbackslash{}"}


def round_half_up(value: float, decimals: int) -> Decimal:
    """``value`` rounded half up on its shortest decimal repr, as a reader rounds.

    ``f"{31.25:.1f}"`` gives 31.2 (half to even) and ``f"{2.675:.2f}"`` gives 2.67 (the
    binary value lies below 2.675); a reader of the paper expects 31.3 and 2.68.
    """
    with localcontext() as ctx:
        ctx.prec = _PRECISION
        return Decimal(repr(float(value))).quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP)


def format_number(value: float | None, decimals: int = 2, *, thousands: bool = False, missing: str = "--") -> str:
    """``value`` with ``decimals`` digits, rounded half up; ``missing`` for None or NaN.

    Args:
        value: the number.
        decimals: digits after the point.
        thousands: group the integer part with commas (terminal tables).
        missing: what a missing value prints as.
    """
    if value is None or math.isnan(value):
        return missing
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    rounded = round_half_up(value, decimals)
    return f"{rounded:,f}" if thousands else f"{rounded:f}"


def tex_escape(text: str) -> str:
    """``text`` with LaTeX's special characters escaped, for names in table cells."""
    return "".join(_TEX_SPECIAL.get(ch, ch) for ch in text)


def arrow(higher_is_better: bool | None, up: str, down: str) -> str:
    """``up`` or ``down`` by the metric's direction; nothing when the direction is unknown."""
    if higher_is_better is None:
        return ""
    return up if higher_is_better else down


def bold_tex(text: str) -> str:
    r"""``\textbf`` around the first word only, so "55.4 (53.7)" bolds the best-of value."""
    first, _, rest = text.partition(" ")
    return rf"\textbf{{{first}}}" + (f" {rest}" if rest else "")


def tex_row(cells: Iterable[str]) -> str:
    """One tabular row: cells joined by ``&``, ended by ``\\``."""
    return " & ".join(cells) + r" \\"


def booktabs(
    column_spec: str,
    header: Sequence[str],
    blocks: Iterable[Sequence[str]],
    *,
    comments: Sequence[str] = (),
    footer: Sequence[str] = (),
) -> str:
    r"""A booktabs ``tabular``: comment lines, ``\toprule``, the header lines, each block
    after a ``\midrule``, ``\bottomrule``, the footer lines, ``\end{tabular}``.

    Args:
        column_spec: the tabular's column spec, e.g. ``"lcc"``.
        header: finished header lines (rows and ``\cmidrule`` lines).
        blocks: groups of finished row lines, each opened by a ``\midrule``.
        comments: lines written before the tabular, each prefixed with ``% ``.
        footer: lines between ``\bottomrule`` and ``\end{tabular}`` (notes).
    """
    lines = [f"% {comment}" for comment in comments]
    lines += [rf"\begin{{tabular}}{{{column_spec}}}", r"\toprule", *header]
    for block in blocks:
        lines += [r"\midrule", *block]
    lines += [r"\bottomrule", *footer, r"\end{tabular}"]
    return "\n".join(lines) + "\n"
