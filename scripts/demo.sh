#!/usr/bin/env bash
# The demo: install mailwarden into .venv and triage the bundled sample incident, which was
# recorded on a real Postfix + Dovecot stack (see examples/incident/README.md).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e .
# The sample uses documentation addresses (RFC 5737/3849); examples/lab-geo.mmdb maps them to
# countries the way a real GeoIP database maps real addresses.
set +e
.venv/bin/mailwarden triage examples/incident --geoip-db examples/lab-geo.mmdb "$@"
status=$?
set -e
echo
echo "(exit status $status: 0 = nothing found, 1 = incidents found, 2 = error)"
[ "$status" -le 1 ]
