#!/usr/bin/env bash
# Installs what the test suite needs on a Debian machine (as root), then runs it.
# This is the README's test command, and all that CI runs (.ci/run).
#
#  - Debian packages: SIPp (sip-tester), baresip (a real phone as caller and agent), Kamailio with its TLS module (the proxy in
#    front of two nodes), Chromium for the browser tests, sox and
#    espeak-ng for audio tools, ffmpeg for operators' MP3/OGG prompts, PostgreSQL when no server answers on 127.0.0.1:5432.
#  - a virtualenv in .venv with the project and its test extra.
#  - PostgreSQL: the server of $PREPAID_TEST_DATABASE_URL (default: 127.0.0.1:5432,
#    database test); started or installed here when it does not answer.
#  - pytest on two workers (tox.ini's addopts: -n 2), each with a database of its
#    own made beside that one (tests/conftest.py); pass -n 0 to run in one process.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n== %s\n' "$*"; }

need_pkgs=()
command -v sipp >/dev/null || need_pkgs+=(sip-tester)
command -v baresip >/dev/null || need_pkgs+=(baresip)
PATH="$PATH:/usr/sbin:/sbin" command -v kamailio >/dev/null || need_pkgs+=(kamailio)
dpkg -s kamailio-tls-modules >/dev/null 2>&1 || need_pkgs+=(kamailio-tls-modules)
command -v chromium >/dev/null || need_pkgs+=(chromium)
command -v chromedriver >/dev/null || need_pkgs+=(chromium-driver)
command -v sox >/dev/null || need_pkgs+=(sox)
command -v ffmpeg >/dev/null || need_pkgs+=(ffmpeg)
command -v pg_isready >/dev/null || need_pkgs+=(postgresql postgresql-client)
python3 -c 'import ensurepip, venv' 2>/dev/null || need_pkgs+=(python3-venv)
if [ ${#need_pkgs[@]} -gt 0 ]; then
  log "installing Debian packages: ${need_pkgs[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
fi

log "PostgreSQL"
if [ -z "${PREPAID_TEST_DATABASE_URL:-}" ]; then
  if ! pg_isready -q -h 127.0.0.1 -p 5432; then
    # a Debian cluster that is installed but not running (or just installed)
    ver=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1 || true)
    if [ -n "$ver" ]; then
      pg_ctlcluster --skip-systemctl-redirect "$ver" main start || true
    fi
    for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
  fi
  if psql -h 127.0.0.1 -U root -d test -Atc 'select 1' >/dev/null 2>&1; then
    export PREPAID_TEST_DATABASE_URL="postgresql+psycopg://root@127.0.0.1:5432/test"
  else
    # a fresh Debian cluster: password auth on TCP, so make a role and database for the tests
    su postgres -c "psql -qc \"DO \\\$\\\$BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname='prepaid') THEN CREATE ROLE prepaid LOGIN SUPERUSER PASSWORD 'prepaid'; END IF; END\\\$\\\$\"" || true
    su postgres -c "createdb -O prepaid test" 2>/dev/null || true
    export PREPAID_TEST_DATABASE_URL="postgresql+psycopg://prepaid:prepaid@127.0.0.1:5432/test"
  fi
fi
pg_isready -h 127.0.0.1 -p 5432 || true

log "virtualenv .venv"
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install -q --disable-pip-version-check -e '.[test]'

log "tests"
set +e
.venv/bin/python -m pytest "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
  echo "pytest collected no tests: that is a failure here" >&2
  exit 1
fi
exit "$rc"
