"""HTML templates shared by the report (`miner report`) and the dashboard (`miner serve`)."""

from __future__ import annotations

from jinja2 import Environment, PackageLoader, select_autoescape

from miner.present.charts import percent

templates = Environment(
    loader=PackageLoader("miner.present.web", "templates"),
    autoescape=select_autoescape(["html", "j2"]),
)
templates.globals["percent"] = percent
