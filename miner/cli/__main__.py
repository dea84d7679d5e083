"""`python -m miner.cli ...`, as the tests and the Docker image start it."""

from miner.cli import app

app()
