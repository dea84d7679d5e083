#!/usr/bin/env bash
# The one test command (README, `make test`, .ci/run): install, start services, run every test.
set -uo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install --quiet --disable-pip-version-check -e '.[test]' || exit 1
bash scripts/services.sh || exit 1
python3 -m pytest "$@"
status=$?
if [ "$status" -eq 5 ]; then
  echo "test: pytest collected no tests; that is a failure here" >&2
  exit 1
fi
exit "$status"
