#!/usr/bin/env bash
# The one test command's second half (`make test` makes and fills the venv first; README, .ci/run):
# start services, run every test (or the pytest arguments given) with the project venv's python.
set -uo pipefail
cd "$(dirname "$0")/.."
venv=${VENV:-.venv}
python=$venv/bin/python
if [ ! -x "$python" ]; then
  echo "test: no virtual environment at $venv; run \`make test\`, which creates it" >&2
  exit 1
fi
# Which interpreter the venv was made from: in CI, the system's python3 where there is one.
home=$(sed -n 's/^home *= *//p' "$venv/pyvenv.cfg" 2>/dev/null)
echo "test: $("$python" -c 'import platform; print("Python", platform.python_version())') in $venv, made from ${home:-?}"
# Lint, format and types first: a maintainer's habits, checked where the tests are.
"$venv/bin/ruff" check . || { echo "test: ruff check found problems (fix: $venv/bin/ruff check --fix .)" >&2; exit 1; }
"$venv/bin/ruff" format --check --quiet . || { echo "test: files need formatting (fix: $venv/bin/ruff format .)" >&2; exit 1; }
"$venv/bin/mypy" || { echo "test: mypy (strict on the detection core) found problems" >&2; exit 1; }
bash scripts/services.sh || exit 1
"$python" -m pytest "$@"
status=$?
if [ "$status" -eq 5 ]; then
  echo "test: pytest collected no tests; that is a failure here" >&2
  exit 1
fi
exit "$status"
