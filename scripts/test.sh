#!/usr/bin/env bash
# The test command (CI runs it via .ci/run):  bash scripts/test.sh [pytest args...]
# As root it first installs the Debian packages the real-stack tests need; it always makes sure
# .venv exists with the project installed (scripts/install-test-deps.sh), then runs pytest.
# pytest's exit code 5 ("no tests collected") is a failure here, never a silent success.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-test-deps.sh

set +e
.venv/bin/python -m pytest -q "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
  echo "scripts/test.sh: pytest collected no tests (exit 5) -- treating as failure" >&2
  exit 1
fi
exit "$rc"
