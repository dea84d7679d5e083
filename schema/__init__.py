"""Tables, engine/session creation from the database URL, idempotent store functions, migrations."""

from schema.models import Crawl, CrawlStatus, FileResult, Finding, MiningRun, Repository

__all__ = ["Crawl", "CrawlStatus", "FileResult", "Finding", "MiningRun", "Repository"]
