"""The API table as data: which qualified names count, and as what."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

import yaml

from miner.core.domain import LATEST_SPEC, Category


@dataclass(frozen=True)
class Rules:
    """A tracker's detection rules, loaded from miner/core/rules/<name>.yaml."""

    name: str
    version: str
    spec_version: int  # the version of docs/detection.md these rules follow
    namespaces: tuple[str, ...]
    apis: dict[str, Category]
    default_category: Category
    client_category: Category
    client_classes: frozenset[str]
    client_qualified_prefix: str
    disabling_api: str
    disabling_keyword: str
    non_flavor_modules: frozenset[str]
    headline_apis: tuple[str, ...]

    def category_of(self, api: str) -> Category:
        return self.apis.get(api, self.default_category)

    def in_namespace(self, qualified_name: str) -> bool:
        head = qualified_name.split(".", 1)[0]
        return head in self.namespaces and "." in qualified_name

    def flavor_of(self, qualified_name: str) -> str | None:
        """`mlflow.sklearn.autolog` -> `sklearn`; `mlflow.autolog` or `mlflow.models.x` -> None."""
        parts = qualified_name.split(".")
        if len(parts) == 3 and parts[1] not in self.non_flavor_modules:
            return parts[1]
        return None

    @property
    def categories(self) -> list[Category]:
        """Categories in table order, `client` and `other` last."""
        seen: list[Category] = []
        for category in self.apis.values():
            if category not in seen:
                seen.append(category)
        for extra in (self.client_category, self.default_category):
            if extra not in seen:
                seen.append(extra)
        return seen

    def apis_of(self, category: Category) -> list[str]:
        return [api for api, cat in self.apis.items() if cat is category]


def _parse(raw: dict[str, Any]) -> Rules:
    return Rules(
        name=raw["name"],
        version=str(raw["version"]),
        spec_version=int(raw.get("spec_version", LATEST_SPEC)),
        namespaces=tuple(raw["namespaces"]),
        apis={api: Category(cat) for api, cat in raw["apis"].items()},
        default_category=Category(raw.get("default_category", "other")),
        client_category=Category(raw.get("client_category", "client")),
        client_classes=frozenset(raw.get("client_classes", [])),
        client_qualified_prefix=raw.get("client_qualified_prefix", ""),
        disabling_api=raw.get("disabling", {}).get("api", ""),
        disabling_keyword=raw.get("disabling", {}).get("keyword", ""),
        non_flavor_modules=frozenset(raw.get("non_flavor_modules", [])),
        headline_apis=tuple(raw.get("headline_apis", [])),
    )


@lru_cache(maxsize=8)
def load_rules(name: str = "mlflow") -> Rules:
    """Load a shipped rules file by name, or any YAML file by path."""
    if name.endswith((".yaml", ".yml")):
        with open(name, encoding="utf-8") as handle:
            return _parse(yaml.safe_load(handle))
    text = resources.files("miner.core").joinpath("rules", f"{name}.yaml").read_text("utf-8")
    return _parse(yaml.safe_load(text))
