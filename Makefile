# Two commands for a fresh machine: `make run` (mine the default topic on the embedded SQLite
# database, no broker) and `make test` (install test needs, start Redis/PostgreSQL, run tests).
.PHONY: run test install

install:
	python3 -m pip install --quiet --disable-pip-version-check -e .

run: install
	miner crawl
	miner stats

test:
	bash scripts/test.sh
