"""HTML templates shared by the report (`miner report`) and the dashboard (`miner serve`)."""

from __future__ import annotations

from jinja2 import Environment, PackageLoader, select_autoescape

from miner.charts import percent

templates = Environment(
    loader=PackageLoader("miner.web", "templates"),
    autoescape=select_autoescape(["html", "j2"]),
)
templates.globals["percent"] = percent
