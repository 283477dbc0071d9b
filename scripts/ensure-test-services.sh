#!/usr/bin/env bash
# Make sure PostgreSQL (127.0.0.1:5432) and Redis (127.0.0.1:6379) answer for the tests:
# start them when installed but stopped, install them with apt-get when missing (as root).
set -euo pipefail

PG_HOST=127.0.0.1 PG_PORT=5432 REDIS_PORT=6379

log() { echo "[services] $*"; }

answers() { # host port
    (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}

wait_for() { # name host port
    for _ in $(seq 1 60); do
        answers "$2" "$3" && return 0
        sleep 0.5
    done
    log "$1 did not start listening on $2:$3"
    return 1
}

# Root, or a user with password-less sudo (GitHub's runners), may install packages.
can_install() {
    [ "$(id -u)" = 0 ] || sudo -n true 2>/dev/null
}

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; else sudo -n "$@"; fi
}

apt_install() {
    if ! can_install; then
        log "$* missing and not root: install it, or start it on its default port"
        exit 1
    fi
    log "installing $* with apt-get"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

ensure_postgres() {
    if answers "$PG_HOST" "$PG_PORT"; then
        return 0
    fi
    if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
        apt_install postgresql
    fi
    local version
    version="$(find /etc/postgresql -mindepth 1 -maxdepth 1 -printf "%f\n" | sort -V | tail -1)"
    log "starting PostgreSQL $version"
    pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
    wait_for PostgreSQL "$PG_HOST" "$PG_PORT"
    # The tests connect as postgres/postgres over TCP: works with trust or password auth.
    if [ "$(id -u)" = 0 ]; then
        su postgres -c "psql -qc \"ALTER USER postgres PASSWORD 'postgres'\"" >/dev/null || true
    fi
}

ensure_redis() {
    if answers "$PG_HOST" "$REDIS_PORT"; then
        return 0
    fi
    command -v redis-server >/dev/null 2>&1 || apt_install redis-server
    log "starting Redis"
    redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no
    wait_for Redis "$PG_HOST" "$REDIS_PORT"
}

ensure_monitoring_tools() {
    # promtool and amtool check monitoring/ (monitoring/tests). Debian ships them in the
    # server packages; --no-install-recommends leaves out node-exporter.
    local missing=()
    command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
    command -v amtool >/dev/null 2>&1 || missing+=(prometheus-alertmanager)
    if [ "${#missing[@]}" -gt 0 ]; then
        apt_install --no-install-recommends "${missing[@]}"
    fi
}

if [ "${1:-}" = monitoring-tools ]; then # only the tools: what monitoring/tests needs
    ensure_monitoring_tools
    exit 0
fi

# The deployment checks (deploy/tests, tests/test_production_topology.py) run Debian's
# nginx, shellcheck and docker-compose (it validates deploy/compose.yaml without an
# engine): install them when missing.
ensure_deploy_tools() {
    local missing=()
    [ -x /usr/sbin/nginx ] || command -v nginx >/dev/null 2>&1 || missing+=(nginx)
    command -v shellcheck >/dev/null 2>&1 || missing+=(shellcheck)
    command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
    [ ${#missing[@]} = 0 ] && return 0
    if ! can_install; then
        log "${missing[*]} missing and not root: the deployment tests need them"
        return 0
    fi
    apt_install "${missing[@]}"
}

# The admin's browser journey (tests/browser) drives Debian's chromium through Playwright:
# Playwright's own browser download does not work here.
ensure_browser() {
    # CHROMIUM_PATH: another Chromium-based browser where Debian's package is not one
    # (GitHub's Ubuntu runners have Google Chrome; their chromium is a snap).
    [ -x "${CHROMIUM_PATH:-/usr/bin/chromium}" ] && return 0
    if ! can_install; then
        log "chromium missing and not root: the browser tests (tests/browser) need it"
        return 0
    fi
    # Its fonts, not the printer and desktop tools it recommends too.
    apt_install --no-install-recommends chromium fonts-liberation
}

ensure_postgres
ensure_redis
ensure_deploy_tools
ensure_browser
ensure_monitoring_tools
log "PostgreSQL and Redis answer on 127.0.0.1; the check tools and chromium are installed"
