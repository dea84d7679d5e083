"""What can go wrong talking to GitHub, split by whether waiting can fix it.

Kept apart from the client so Celery tasks can name `TransientGithubError` in `autoretry_for`
without reading how requests are sent.
"""

from __future__ import annotations


class GithubError(Exception):
    """A GitHub request failed in a way that retrying will not fix."""


class GithubNotFound(GithubError):
    """The repository or branch does not exist (or is not visible to the token)."""


class GithubRequestRejected(GithubError):
    """GitHub refused the request (401, 403 without a rate limit, 422, ...)."""


class TransientGithubError(Exception):
    """A fault that may pass: Celery tasks `autoretry_for` this."""


class GithubUnavailable(TransientGithubError):
    """GitHub kept failing (5xx, dropped connections, rate limits) after every allowed retry."""
