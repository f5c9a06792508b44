#!/usr/bin/env bash
# Install what the test suite needs, skipping whatever is already there (safe to re-run):
#   1. Debian packages for the real-stack integration tests (root only; non-interactive;
#      package scripts are not allowed to start the system's Postfix/Dovecot/Redis);
#   2. the project venv .venv with `pip install -e '.[test]'` (re-run only when pyproject.toml
#      changed).
# usage: bash scripts/install-test-deps.sh        (as root for part 1; without root part 1 only
#                                                  reports what is missing)
set -euo pipefail
cd "$(dirname "$0")/.."

PKGS=(postfix dovecot-core dovecot-imapd dovecot-pop3d swaks pflogsumm netcat-openbsd dnsutils
      rbldnsd redis-server nftables daemontools php-cli libsasl2-modules libsasl2-modules-db)

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q '^install ok installed$'; }

missing=()
for p in "${PKGS[@]}"; do installed "$p" || missing+=("$p"); done

if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "install-test-deps: not root, cannot install: ${missing[*]} (integration tests will skip)" >&2
  else
    echo "install-test-deps: installing ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    echo "postfix postfix/main_mailer_type select Local only" | debconf-set-selections
    echo "postfix postfix/mailname string mx.example.test" | debconf-set-selections
    # Keep package scripts from starting system daemons (there is no init system here anyway;
    # our tests start their own instances). Only add a policy-rc.d if there is none, and
    # remove only the one we added.
    created_policy=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
      printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
      chmod 0755 /usr/sbin/policy-rc.d
      created_policy=1
    fi
    cleanup() { if [ "$created_policy" = 1 ]; then rm -f /usr/sbin/policy-rc.d; fi; }
    trap cleanup EXIT
    timeout 900 apt-get -o DPkg::Lock::Timeout=300 update -qq
    timeout 1800 apt-get -o DPkg::Lock::Timeout=300 install -y -qq "${missing[@]}" </dev/null
    cleanup
    trap - EXIT
    still=()
    for p in "${missing[@]}"; do installed "$p" || still+=("$p"); done
    if [ ${#still[@]} -gt 0 ]; then
      echo "install-test-deps: still missing after apt-get: ${still[*]}" >&2
      exit 1
    fi
  fi
fi

# ---- MTAs that cannot be installed beside Postfix (they conflict as the system MTA) ----
# The real-daemon tests of Exim, Sendmail, OpenSMTPD and Courier unpack these packages into a temp root and run
# them in a private mount namespace; fetch the .debs here so the tests find them cached.
DEBS=(exim4-daemon-light exim4-base exim4-config libidn12 opensmtpd sendmail-bin sendmail-base sendmail-cf m4 sasl2-bin
      courier-imap courier-pop courier-base courier-authlib courier-authdaemon courier-authlib-userdb gamin
      libcourier-unicode4 libgamin0 libltdl7)
if [ "$(id -u)" = 0 ]; then
  debdir="${XDG_CACHE_HOME:-$HOME/.cache}/mailwarden-tests/debs"
  mkdir -p "$debdir"
  want=()
  for p in "${DEBS[@]}"; do ls "$debdir/${p}"_*.deb >/dev/null 2>&1 || want+=("$p"); done
  if [ ${#want[@]} -gt 0 ]; then
    echo "install-test-deps: fetching ${want[*]} (.deb only, not installed)" >&2
    if ! (cd "$debdir" && timeout 600 apt-get download -qq "${want[@]}" </dev/null); then
      timeout 900 apt-get -o DPkg::Lock::Timeout=300 update -qq
      (cd "$debdir" && timeout 600 apt-get download -qq "${want[@]}" </dev/null)
    fi
  fi
fi

# ---- Python venv ----
PY=${PYTHON:-}
if [ -z "$PY" ]; then
  for c in python3 python3.11 python3.12 python3.13; do
    if command -v "$c" >/dev/null 2>&1 &&
       "$c" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      PY=$c; break
    fi
  done
fi
[ -n "$PY" ] || { echo "install-test-deps: need Python >= 3.11" >&2; exit 1; }
if [ ! -x .venv/bin/python ]; then
  if ! "$PY" -c 'import ensurepip, venv' 2>/dev/null; then
    # Debian's own python3 needs python3-venv for "python3 -m venv"
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      echo "install-test-deps: installing python3-venv" >&2
      export DEBIAN_FRONTEND=noninteractive
      timeout 900 apt-get -o DPkg::Lock::Timeout=300 update -qq
      timeout 1800 apt-get -o DPkg::Lock::Timeout=300 install -y -qq python3-venv </dev/null
    else
      echo "install-test-deps: $PY has no venv/ensurepip (Debian: apt-get install python3-venv)" >&2
      exit 1
    fi
  fi
  echo "install-test-deps: creating .venv with $PY" >&2
  "$PY" -m venv .venv || { rm -rf .venv; exit 1; }
fi
stamp=.venv/.mailwarden-deps.sha256
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ] ||
   ! .venv/bin/python -c 'import mailwarden, pytest' 2>/dev/null; then
  echo "install-test-deps: pip install -e '.[test]'" >&2
  .venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]'
  echo "$want" > "$stamp"
fi
