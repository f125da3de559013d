"""Table layouts (``configs/tables/<name>.yaml``): which protocol, rows, columns and reported numbers.

One layout file per table, so the main table (Table 3, DINO-world's protocol) and the
DINO-Foresight table (Table D, its own protocol) are the same code reading different
files. Rows come from the built-in model specs' ``TableRow`` unless the layout lists its
own; metric names, decimals and arrows come from the tasks' ``MetricDef``s.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from functools import cache
from typing import Any

from dfbench.config import load_yaml
from dfbench.errors import DfbenchError

ROLES = ("lower_bound", "model", "upper_bound")


@dataclass(frozen=True)
class ReferenceRow:
    """A row with reported numbers only (a variant nobody can run here), shown with ``--reference``."""

    reference: str  # its model name in reported_numbers.csv
    display: str
    after: str | None = None  # the model row it follows; None: after the model rows
    tokens: int | None = None


@dataclass(frozen=True)
class Layout:
    """One parsed table layout.

    Attributes:
        name: the file's stem; names the outputs (``<name>.csv``, ``<name>.tex``).
        title: the terminal table's title.
        protocol: the ``name`` of the protocol whose results this table reads.
        lower_bound, upper_bound: the models that open and close the table (None: none).
        models: model -> ``display``, ``short``, ``reference`` (and ``tokens``) of its row.
        datasets: column order of the data sets (others follow alphabetically).
        metrics: every task metric's ``MetricDef`` fields, by name.
        columns: when set, only these metrics get columns, in this order.
        horizons: horizon -> column heading.
        reference: ``source``, ``table``, ``suffix`` of the reported rows.
        reference_metrics: reported-numbers metric name -> ours, where they differ.
        reference_rows: rows that only have reported numbers.
    """

    name: str
    title: str
    protocol: str
    lower_bound: str | None
    upper_bound: str | None
    models: dict[str, dict[str, Any]]
    datasets: dict[str, dict[str, Any]]
    metrics: dict[str, dict[str, Any]]
    horizons: dict[str, str]
    reference: dict[str, str]
    columns: tuple[str, ...] | None = None
    reference_metrics: dict[str, str] = field(default_factory=dict)
    reference_rows: tuple[ReferenceRow, ...] = ()

    def model_name(self, model: str) -> str:
        return self.models.get(model, {}).get("display", model)

    def dataset_name(self, dataset: str) -> str:
        from dfbench.registry import get_dataset_spec

        try:
            return get_dataset_spec(dataset).display
        except DfbenchError:  # results of a data set not installed here
            return dataset

    def metric(self, metric: str) -> dict[str, Any]:
        # Unknown third-party metrics get no arrow and no bolding: their direction is unknown.
        return self.metrics.get(metric, {"display": metric, "higher_is_better": None, "decimals": 2})

    def tokens(self, model: str, feature_spaces: set[str] | None = None) -> int | None:
        """The row's token count; None when it is declared for one feature space and the row's
        results (``feature_spaces``) are in another."""
        row = self.models.get(model, {})
        space = row.get("tokens_space")
        if space is not None and feature_spaces is not None and feature_spaces != {space}:
            return None
        return row.get("tokens")


def forecast_tokens(value: Any) -> int | None:
    """A row's token count: a number, or ``{config: "module:callable"}`` whose result has
    ``frames`` and ``grid`` (tokens per forecast = frames x h x w, e.g. DINO-Foresight's
    ``ForesightConfig.released()``: 5 x 32 x 64 = 10240)."""
    if value is None or isinstance(value, int):
        return value
    from dfbench.registry import resolve_target

    try:
        config = resolve_target(value["config"])()
        return int(config.frames) * int(config.grid[0]) * int(config.grid[1])
    except (ImportError, AttributeError, KeyError, TypeError) as err:
        raise DfbenchError(f"table layout: cannot read a token count from {value!r} ({err}); fix configs/tables.") from None


def _spec_rows() -> dict[str, dict[str, Any]]:
    """Model -> row fields of every built-in spec that has a table row, in declaration order."""
    from dfbench.registry import builtin_model_specs

    return {
        s.name: {"role": s.table.role, **{k: v for k, v in (("display", s.display), ("short", s.table.short),
                                                          ("reference", s.table.reference)) if v}}
        for s in builtin_model_specs() if s.table is not None
    }


def _spec_display(model: str) -> dict[str, Any]:
    from dfbench.registry import get_model_spec

    try:
        spec = get_model_spec(model)
    except DfbenchError:  # a row whose model is not installed here
        return {}
    fields = {"display": spec.display}
    if spec.table is not None:
        fields.update({k: v for k, v in (("role", spec.table.role), ("short", spec.table.short),
                                         ("reference", spec.table.reference)) if v})
    return fields


def _listed_rows(raw: list[Any]) -> dict[str, dict[str, Any]]:
    """A layout's own ``rows``: each a model name or {model, display, role, reference, short, tokens};
    the model's spec (its display name and TableRow) wins where it has one, the layout fills the rest."""
    rows = {}
    for entry in raw:
        entry = {"model": entry} if isinstance(entry, str) else dict(entry)
        model = entry.pop("model")
        row = {**entry, **_spec_display(model)}
        declared = row.get("tokens")
        row["tokens_space"] = declared.get("feature_space") if isinstance(declared, dict) else None
        row["tokens"] = forecast_tokens(declared)
        rows[model] = row
    return rows


@cache
def load_layout(name: str = "main") -> Layout:
    """Reads ``configs/tables/<name>.yaml``."""
    try:
        raw = load_yaml("tables", f"{name}.yaml")
    except DfbenchError:
        raise DfbenchError(f"no table layout '{name}' in configs/tables; use 'main' or 'foresight'.") from None
    from dfbench.tasks import metric_defs

    rows = _listed_rows(raw["rows"]) if "rows" in raw else _spec_rows()
    for model, row in rows.items():
        if row.setdefault("role", "model") not in ROLES:
            raise DfbenchError(f"table layout '{name}': row {model} has role {row['role']!r}, not one of {ROLES}.")
    reference = dict(raw["reference"])
    return Layout(
        name=name,
        title=raw.get("title", name),
        protocol=raw["protocol"],
        lower_bound=next((m for m, r in rows.items() if r["role"] == "lower_bound"), None),
        upper_bound=next((m for m, r in rows.items() if r["role"] == "upper_bound"), None),
        models={m: {k: v for k, v in r.items() if k != "role" and v is not None} for m, r in rows.items()},
        datasets=raw.get("datasets", {}),
        metrics={metric.name: asdict(metric) for metric in metric_defs()},
        horizons=raw["horizons"],
        reference={k: str(v) for k, v in reference.items() if k not in ("metrics", "rows")},
        columns=tuple(raw["metrics"]) if "metrics" in raw else None,
        reference_metrics=dict(reference.get("metrics", {})),
        reference_rows=tuple(ReferenceRow(**row) for row in reference.get("rows", [])),
    )
