#!/usr/bin/env bash
# SMS Admin incident response: health checks, diagnostics and the runbook's safe fixes
# (docs/runbook.md), on a systemd or a docker compose deployment.
#
# Run `scripts/incident-response.sh --help` for the subcommands. Needs bash, curl and the
# usual tools; jq is used when present (else python3, else grep).
set -euo pipefail

IR_PROG="$(basename "${BASH_SOURCE[0]}")"
readonly IR_USAGE="Usage: $IR_PROG [--dry-run] COMMAND [ARGS]

Commands:
  health                              check GET /health; exit 0 healthy, 1 not
  monitor [--interval S] [--count N]  check every S seconds (default 10), N times
                                      (default 0: until interrupted)
  restart [web|worker|beat|all]       restart a service (default: all)
  diagnostics                         health JSON, service status, recent logs,
                                      disk/memory, DB/Redis reachability, queue
  handle ALERT                        run the runbook's checks and safe fix for ALERT:
                                      app_down | high_error_rate |
                                      resource_exhaustion | queue_stuck

Options:
  --dry-run        print the restarts instead of running them (also SMSADMIN_DRY_RUN=1)
  -h, --help       this help

Environment:
  SMSADMIN_URL          base URL of the app (default http://127.0.0.1:8000)
  SMSADMIN_DEPLOY       systemd | compose | local (default: detected)
  SMSADMIN_COMPOSE_FILE compose file (default deploy/compose.yaml)
  SMSADMIN_COMPOSE_PROJECT  compose project name (default smsadmin)
  SMSADMIN_RECHECK_WAIT seconds to wait for recovery after a restart (default 60)
  SMSADMIN_HTTP_TIMEOUT seconds per HTTP request (default 5)
  DISK_THRESHOLD / MEMORY_THRESHOLD  percent used that counts as exhausted (85 / 90)
  NOTIFY_WEBHOOK_URL    POST {\"text\": ...} (Slack-compatible) for every action/failure
  METRICS_TOKEN         bearer token for GET /metrics (high_error_rate)

Exit codes: 0 ok, 1 unhealthy (or an action failed), 2 usage."

IR_SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
IR_REPO_DIR="$(cd "$IR_SCRIPT_DIR/.." && pwd)"
SMSADMIN_URL="${SMSADMIN_URL:-http://127.0.0.1:8000}"
SMSADMIN_URL="${SMSADMIN_URL%/}"
IR_HTTP_TIMEOUT="${SMSADMIN_HTTP_TIMEOUT:-5}"
IR_RECHECK_WAIT="${SMSADMIN_RECHECK_WAIT:-60}"
IR_COMPOSE_FILE="${SMSADMIN_COMPOSE_FILE:-$IR_REPO_DIR/deploy/compose.yaml}"
IR_COMPOSE_PROJECT="${SMSADMIN_COMPOSE_PROJECT:-smsadmin}"
IR_DRY_RUN="${SMSADMIN_DRY_RUN:-0}"
IR_DISK_THRESHOLD="${DISK_THRESHOLD:-85}"
IR_MEMORY_THRESHOLD="${MEMORY_THRESHOLD:-90}"
readonly IR_SERVICES=(web worker beat)

# Filled by fetch_health.
HEALTH_CODE="000"
HEALTH_BODY=""
IR_DEPLOY=""
IR_COMPOSE=()

# --- Output and notifications -----------------------------------------------------------

log() { printf '%s %s\n' "$(date '+%H:%M:%S')" "$*"; }
warn() { printf '%s WARNING: %s\n' "$(date '+%H:%M:%S')" "$*" >&2; }
usage_error() {
    printf 'error: %s\n\n%s\n' "$1" "$IR_USAGE" >&2
    exit 2
}

json_string() {
    # A JSON string literal for $1.
    if command -v jq >/dev/null 2>&1; then
        jq -Rn --arg text "$1" '$text'
    elif command -v python3 >/dev/null 2>&1; then
        python3 -c 'import json, sys; print(json.dumps(sys.argv[1]))' "$1"
    else
        local escaped=${1//\\/\\\\}
        escaped=${escaped//\"/\\\"}
        escaped=${escaped//$'\n'/\\n}
        escaped=${escaped//$'\t'/\\t}
        escaped=${escaped//$'\r'/}
        printf '"%s"\n' "$escaped"
    fi
}

notify() {
    # POST {"text": "..."} to NOTIFY_WEBHOOK_URL; a failing webhook never stops the script.
    [[ -n "${NOTIFY_WEBHOOK_URL:-}" ]] || return 0
    local host text payload
    host="$(hostname 2>/dev/null || echo host)"
    text="[smsadmin $host] $*"
    payload="{\"text\": $(json_string "$text")}"
    if ! curl -fsS -m "$IR_HTTP_TIMEOUT" -X POST -H 'Content-Type: application/json' \
        --data "$payload" "$NOTIFY_WEBHOOK_URL" >/dev/null 2>&1; then
        warn "could not notify the webhook"
    fi
    return 0
}

action() { log "ACTION: $*"; notify "action: $*"; }
failure() { log "FAILURE: $*"; notify "failure: $*"; }

# --- Deployment ---------------------------------------------------------------------------

detect_compose() {
    if docker compose version >/dev/null 2>&1; then
        IR_COMPOSE=(docker compose)
    elif command -v docker-compose >/dev/null 2>&1; then
        IR_COMPOSE=(docker-compose)
    else
        return 1
    fi
    IR_COMPOSE+=(-p "$IR_COMPOSE_PROJECT" -f "$IR_COMPOSE_FILE")
}

detect_deploy() {
    [[ -n "$IR_DEPLOY" ]] && return 0
    case "${SMSADMIN_DEPLOY:-}" in
        systemd | local) IR_DEPLOY="$SMSADMIN_DEPLOY" ;;
        compose)
            IR_DEPLOY=compose
            detect_compose || { warn "SMSADMIN_DEPLOY=compose but no docker compose found"; IR_COMPOSE=(docker compose -p "$IR_COMPOSE_PROJECT" -f "$IR_COMPOSE_FILE"); }
            ;;
        "")
            if command -v systemctl >/dev/null 2>&1 \
                && systemctl list-unit-files smsadmin-web.service 2>/dev/null | grep -q '^smsadmin-web\.service'; then
                IR_DEPLOY=systemd
            elif [[ -f "$IR_COMPOSE_FILE" ]] && detect_compose; then
                IR_DEPLOY=compose
            else
                IR_DEPLOY=local
            fi
            ;;
        *) usage_error "SMSADMIN_DEPLOY must be systemd, compose or local, not '$SMSADMIN_DEPLOY'" ;;
    esac
}

unit_of() { printf 'smsadmin-%s.service' "$1"; }

run_or_print() {
    # Run a command (print it first); with --dry-run only print it.
    if [[ "$IR_DRY_RUN" == 1 ]]; then
        log "dry run, would run: $*"
        return 0
    fi
    log "+ $*"
    "$@"
}

restart_service() {
    local service="$1"
    detect_deploy
    case "$IR_DEPLOY" in
        systemd)
            action "restarting $(unit_of "$service") (systemd)"
            run_or_print systemctl restart "$(unit_of "$service")" \
                || { failure "systemctl restart $(unit_of "$service") failed"; return 1; }
            ;;
        compose)
            action "restarting compose service $service"
            run_or_print "${IR_COMPOSE[@]}" restart "$service" \
                || run_or_print "${IR_COMPOSE[@]}" up -d --no-deps "$service" \
                || { failure "could not restart compose service $service"; return 1; }
            ;;
        local)
            log "local mode (no systemd unit, no compose file): would restart $service;" \
                "restart it by hand"
            notify "local mode: would restart $service (not restarted)"
            ;;
    esac
}

start_redis() {
    detect_deploy
    case "$IR_DEPLOY" in
        systemd)
            action "starting redis-server (systemd)"
            run_or_print systemctl start redis-server || { failure "could not start redis-server"; return 1; }
            ;;
        compose)
            action "starting compose service redis"
            run_or_print "${IR_COMPOSE[@]}" up -d redis || { failure "could not start compose service redis"; return 1; }
            ;;
        local) log "local mode: would start Redis; start it by hand" ;;
    esac
}

# --- HTTP and the health JSON -------------------------------------------------------------

fetch_health() {
    # Sets HEALTH_CODE (000 when nothing answered) and HEALTH_BODY.
    local body_file
    body_file="$(mktemp)"
    HEALTH_CODE="$(curl -sS -m "$IR_HTTP_TIMEOUT" -o "$body_file" -w '%{http_code}' \
        -H 'Accept: application/json' "$SMSADMIN_URL/health" 2>/dev/null)" || true
    HEALTH_CODE="${HEALTH_CODE:-000}"
    HEALTH_BODY="$(cat "$body_file")"
    rm -f "$body_file"
}

live_code() {
    curl -sS -m "$IR_HTTP_TIMEOUT" -o /dev/null -w '%{http_code}' \
        "$SMSADMIN_URL/health/live" 2>/dev/null || true
}

health_is_json() { [[ "$HEALTH_BODY" == "{"* ]]; }

health_query() {
    # health_query status|failing|checks|stats|pretty on HEALTH_BODY.
    local what="$1"
    health_is_json || return 0
    if command -v jq >/dev/null 2>&1; then
        case "$what" in
            status) jq -r '.status // "unknown"' <<<"$HEALTH_BODY" ;;
            failing) jq -r '(.failing // []) | join(" ")' <<<"$HEALTH_BODY" ;;
            checks) jq -r '(.checks // {}) | to_entries[] | [.key,
                (if .value.ok == true then "ok" elif .value.ok == false then "FAILING" else "unknown" end),
                (.value.detail // "")] | @tsv' <<<"$HEALTH_BODY" ;;
            stats) jq -r '"messages last hour: " + (((.messages_last_hour // {})
                | to_entries | map(select(.key != "complete") | "\(.key)=\(.value)") | join(" ")) // "n/a")
                + (if (.messages_last_hour.complete // true) then "" else " (partial)" end)
                + "\noldest pending: " + (if .oldest_pending_seconds == null then "none due"
                else "\(.oldest_pending_seconds) s" end)' <<<"$HEALTH_BODY" ;;
            pretty) jq . <<<"$HEALTH_BODY" ;;
        esac
    elif command -v python3 >/dev/null 2>&1; then
        python3 - "$what" "$HEALTH_BODY" <<'PY'
import json, sys
what, body = sys.argv[1], json.loads(sys.argv[2])
if what == "status":
    print(body.get("status", "unknown"))
elif what == "failing":
    print(" ".join(body.get("failing", [])))
elif what == "checks":
    for name, check in (body.get("checks") or {}).items():
        ok = {True: "ok", False: "FAILING"}.get(check.get("ok"), "unknown")
        print(f"{name}\t{ok}\t{check.get('detail', '')}")
elif what == "stats":
    hour = body.get("messages_last_hour") or {}
    counts = " ".join(f"{k}={v}" for k, v in hour.items() if k != "complete")
    partial = "" if hour.get("complete", True) else " (partial)"
    print(f"messages last hour: {counts or 'n/a'}{partial}")
    pending = body.get("oldest_pending_seconds")
    print("oldest pending: " + ("none due" if pending is None else f"{pending} s"))
elif what == "pretty":
    print(json.dumps(body, indent=2))
PY
    else
        case "$what" in
            status) grep -o '"status": *"[a-z]*"' <<<"$HEALTH_BODY" | head -n1 | sed 's/.*"\([a-z]*\)"$/\1/' ;;
            failing) grep -o '"failing": *\[[^]]*\]' <<<"$HEALTH_BODY" | sed 's/.*\[//; s/\]//; s/[",]/ /g' | xargs ;;
            *) printf '%s\n' "$HEALTH_BODY" ;;
        esac
    fi
}

health_failing_list() { health_query failing; }

print_health_summary() {
    # One summary line, then the failing checks' details. Returns 0 healthy, 1 not.
    if [[ "$HEALTH_CODE" == "000" ]]; then
        log "UNREACHABLE: $SMSADMIN_URL/health did not answer"
        return 1
    fi
    if ! health_is_json; then
        log "UNHEALTHY: $SMSADMIN_URL/health answered HTTP $HEALTH_CODE, not JSON"
        return 1
    fi
    local status failing
    status="$(health_query status)"
    failing="$(health_failing_list)"
    if [[ "$HEALTH_CODE" == "200" && "$status" == "ok" ]]; then
        log "HEALTHY: $SMSADMIN_URL/health is ok (HTTP 200)"
        return 0
    fi
    log "UNHEALTHY: $SMSADMIN_URL/health is ${status:-unknown} (HTTP $HEALTH_CODE); failing: ${failing:-none named}"
    local name ok detail
    while IFS=$'\t' read -r name ok detail; do
        [[ "$ok" == "FAILING" ]] && log "  - $name: ${detail:-failing}"
    done < <(health_query checks)
    return 1
}

check_health_once() {
    fetch_health
    print_health_summary
}

wait_for_health() {
    # Poll /health until it is ok or SMSADMIN_RECHECK_WAIT seconds passed.
    local deadline=$((SECONDS + IR_RECHECK_WAIT))
    log "waiting up to ${IR_RECHECK_WAIT} s for /health to recover"
    while true; do
        fetch_health
        if [[ "$HEALTH_CODE" == "200" ]]; then
            break
        fi
        ((SECONDS < deadline)) || break
        sleep 2
    done
    print_health_summary
}

# --- Commands -------------------------------------------------------------------------

cmd_health() {
    [[ $# -eq 0 ]] || usage_error "health takes no arguments"
    if check_health_once; then
        return 0
    fi
    if [[ "$HEALTH_CODE" == "000" ]]; then
        failure "health check failed: $SMSADMIN_URL/health did not answer"
    else
        failure "health check failed: HTTP $HEALTH_CODE, failing: $(health_failing_list || true)"
    fi
    return 1
}

cmd_monitor() {
    local interval=10 count=0
    while [[ $# -gt 0 ]]; do
        case "$1" in
            --interval) [[ $# -ge 2 ]] || usage_error "--interval needs a value"; interval="$2"; shift 2 ;;
            --count) [[ $# -ge 2 ]] || usage_error "--count needs a value"; count="$2"; shift 2 ;;
            *) usage_error "monitor: unknown argument '$1'" ;;
        esac
    done
    [[ "$interval" =~ ^[0-9]+([.][0-9]+)?$ ]] || usage_error "--interval must be a number of seconds"
    [[ "$count" =~ ^[0-9]+$ ]] || usage_error "--count must be a whole number"
    local done_checks=0 previous="" state any_failed=0
    while true; do
        if check_health_once; then state=ok; else state=failing; any_failed=1; fi
        if [[ "$state" != "$previous" ]]; then
            # Notify on changes only: one message per outage, one per recovery.
            if [[ "$state" == failing ]]; then
                failure "health is failing (HTTP $HEALTH_CODE): $(health_failing_list || true)"
            elif [[ -n "$previous" ]]; then
                notify "recovered: /health is ok again"
            fi
            previous="$state"
        fi
        done_checks=$((done_checks + 1))
        if [[ "$count" -gt 0 && "$done_checks" -ge "$count" ]]; then
            break
        fi
        sleep "$interval"
    done
    return "$any_failed"
}

cmd_restart() {
    [[ $# -le 1 ]] || usage_error "restart takes one service"
    local target="${1:-all}" services=()
    case "$target" in
        web | worker | beat) services=("$target") ;;
        all) services=("${IR_SERVICES[@]}") ;;
        *) usage_error "restart: unknown service '$target' (web, worker, beat or all)" ;;
    esac
    detect_deploy
    log "deployment: $IR_DEPLOY"
    local service rc=0
    for service in "${services[@]}"; do
        restart_service "$service" || rc=1
    done
    return "$rc"
}

section() { printf '\n=== %s ===\n' "$1"; }

service_status() {
    detect_deploy
    case "$IR_DEPLOY" in
        systemd)
            local service
            for service in "${IR_SERVICES[@]}"; do
                printf '%-24s %s\n' "$(unit_of "$service")" \
                    "$(systemctl is-active "$(unit_of "$service")" 2>/dev/null || true)"
            done
            ;;
        compose) "${IR_COMPOSE[@]}" ps 2>&1 || true ;;
        local)
            echo "local mode: no service manager; matching processes:"
            pgrep -af 'gunicorn|celery' 2>/dev/null | grep -v pgrep | head -n 20 || echo "(none found)"
            ;;
    esac
}

recent_logs() {
    # recent_logs [SERVICE...] [LINES]
    local lines="${IR_LOG_LINES:-40}" services=("$@")
    [[ ${#services[@]} -gt 0 ]] || services=("${IR_SERVICES[@]}")
    detect_deploy
    case "$IR_DEPLOY" in
        systemd)
            local args=() service
            for service in "${services[@]}"; do args+=(-u "$(unit_of "$service")"); done
            journalctl "${args[@]}" --since '-30 min' -n "$lines" --no-pager 2>&1 || true
            ;;
        compose) "${IR_COMPOSE[@]}" logs --since 30m --tail "$lines" "${services[@]}" 2>&1 || true ;;
        local) echo "local mode: no service logs to read (see the terminal running the app)" ;;
    esac
}

disk_usage_percent() {
    # The fullest real filesystem's use in percent, and its mount point.
    df -P -x tmpfs -x devtmpfs -x overlay -x squashfs 2>/dev/null \
        | awk 'NR > 1 { gsub("%", "", $5); if ($5 + 0 > max) { max = $5 + 0; mount = $6 } }
               END { printf "%d %s\n", max, mount }'
}

memory_usage_percent() {
    awk '/^MemTotal:/ { total = $2 } /^MemAvailable:/ { avail = $2 }
         END { if (total > 0) printf "%d\n", (total - avail) * 100 / total; else print 0 }' /proc/meminfo 2>/dev/null || echo 0
}

resources() {
    echo "load average: $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo n/a) (CPUs: $(nproc 2>/dev/null || echo '?'))"
    if command -v free >/dev/null 2>&1; then free -m; else echo "memory used: $(memory_usage_percent)%"; fi
    df -h -x tmpfs -x devtmpfs -x overlay -x squashfs 2>/dev/null || df -h || true
}

reachability() {
    detect_deploy
    local name ok detail
    while IFS=$'\t' read -r name ok detail; do
        [[ "$name" == database || "$name" == redis ]] && echo "$name (from /health): $ok${detail:+ ($detail)}"
    done < <(health_query checks)
    case "$IR_DEPLOY" in
        compose)
            echo "postgres: $("${IR_COMPOSE[@]}" exec -T postgres pg_isready -U postgres 2>&1 || true)"
            echo "redis: $("${IR_COMPOSE[@]}" exec -T redis redis-cli ping 2>&1 || true)"
            ;;
        *)
            if command -v pg_isready >/dev/null 2>&1; then
                # pg_isready prints host and port only, never the password.
                if [[ -n "${DATABASE_URL:-}" ]]; then
                    echo "postgres: $(pg_isready -t 3 -d "$DATABASE_URL" 2>&1 || true)"
                else
                    echo "postgres: $(pg_isready -t 3 -h 127.0.0.1 2>&1 || true)"
                fi
            fi
            if command -v redis-cli >/dev/null 2>&1; then
                if [[ -n "${REDIS_URL:-}" ]]; then
                    echo "redis: $(timeout 3 redis-cli -u "$REDIS_URL" ping 2>&1 || echo 'no answer')"
                else
                    echo "redis: $(timeout 3 redis-cli -h 127.0.0.1 ping 2>&1 || echo 'no answer')"
                fi
            fi
            ;;
    esac
}

cmd_diagnostics() {
    [[ $# -eq 0 ]] || usage_error "diagnostics takes no arguments"
    detect_deploy
    section "Deployment"
    echo "mode: $IR_DEPLOY; URL: $SMSADMIN_URL; host: $(hostname 2>/dev/null || echo '?'); $(date)"
    section "Health"
    fetch_health
    print_health_summary || true
    if health_is_json; then
        health_query pretty || printf '%s\n' "$HEALTH_BODY"
    else
        echo "(no JSON: HTTP $HEALTH_CODE) ${HEALTH_BODY:0:500}"
    fi
    section "Queue (from /health)"
    health_query stats || true
    section "Services"
    service_status
    section "Recent logs (30 min)"
    recent_logs
    section "CPU, memory, disk"
    resources
    section "Database and Redis"
    reachability || true
    notify "diagnostics collected: /health HTTP $HEALTH_CODE"
    # Informational: it succeeds whatever the state it reports.
    return 0
}

# --- Alerts (docs/runbook.md) ---------------------------------------------------------------

handle_app_down() {
    log "runbook: AppDown: check /health and /health/live, restart web, wait, re-check"
    local live
    live="$(live_code)"
    fetch_health
    print_health_summary && { log "web answers and is healthy: if the alert fires, check the Prometheus scrape (token file, targets)"; return 0; }
    if [[ "$live" == "200" ]]; then
        log "web is alive (/health/live 200) but not ready: a dependency is failing, not web"
        failure "app_down: web serves but /health fails: $(health_failing_list || true)"
        log "see the runbook for each failing check (queue_stuck for worker/beat/pending)"
        return 1
    fi
    failure "app_down: /health/live answered HTTP ${live:-000} (000: no answer)"
    restart_service web || return 1
    detect_deploy
    if [[ "$IR_DEPLOY" == local ]]; then
        return 1
    fi
    if wait_for_health; then
        notify "app_down: web recovered after restart"
        return 0
    fi
    failure "app_down: still failing after restarting web: read the traceback in the web logs"
    recent_logs web
    return 1
}

handle_high_error_rate() {
    log "runbook: HighHttpErrorRate: check health, dependencies and the web logs for tracebacks"
    local rc=0
    check_health_once || rc=1
    local failing
    failing="$(health_failing_list || true)"
    if [[ -n "$failing" ]]; then
        failure "high_error_rate: dependencies failing: $failing (see their alerts)"
    fi
    if [[ -n "${METRICS_TOKEN:-}" ]]; then
        log "5xx responses so far (from /metrics):"
        curl -sS -m "$IR_HTTP_TIMEOUT" -H "Authorization: Bearer $METRICS_TOKEN" "$SMSADMIN_URL/metrics" 2>/dev/null \
            | grep -E '^django_http_responses_total_by_status_view_method\{.*status="5[0-9][0-9]"' \
            | sort -t' ' -k2 -rn | head -n 5 || log "  (none, or /metrics did not answer)"
    else
        log "METRICS_TOKEN not set: skipping the /metrics breakdown"
    fi
    detect_deploy
    if [[ "$IR_DEPLOY" != local ]]; then
        local errors
        errors="$(IR_LOG_LINES=500 recent_logs web | grep -cE 'Traceback|ERROR|Internal Server Error' || true)"
        log "error lines in the last 30 min of web logs: ${errors:-0}"
        IR_LOG_LINES=500 recent_logs web | grep -E -A3 'Traceback|ERROR' | tail -n 20 || true
    fi
    log "no automatic fix: a bad deploy is rolled back by hand; a failing dependency has its own alert"
    return "$rc"
}

handle_resource_exhaustion() {
    log "runbook: HighCpuUsage / HighMemoryUsage / DiskAlmostFull"
    detect_deploy
    local rc=0 disk mount memory
    read -r disk mount < <(disk_usage_percent)
    memory="$(memory_usage_percent)"
    log "load: $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo n/a) on $(nproc 2>/dev/null || echo '?') CPUs;" \
        "memory used: ${memory}%; fullest disk: ${disk}% (${mount:-?})"
    log "top processes by memory:"
    ps aux --sort=-rss 2>/dev/null | head -n 6 || true
    if ((disk >= IR_DISK_THRESHOLD)); then
        rc=1
        failure "disk ${mount:-?} is ${disk}% full (threshold ${IR_DISK_THRESHOLD}%)"
        if [[ "$IR_DEPLOY" == systemd ]] && command -v journalctl >/dev/null 2>&1; then
            action "vacuuming the journal to 500M"
            run_or_print journalctl --vacuum-size=500M || true
        fi
        [[ "$IR_DEPLOY" == compose ]] && { docker system df 2>/dev/null || true; log "consider: docker system prune (not volumes)"; }
        log "check the archive job runs; grow the volume before PostgreSQL stops at 100%"
    fi
    if ((memory >= IR_MEMORY_THRESHOLD)); then
        rc=1
        failure "memory is ${memory}% used (threshold ${IR_MEMORY_THRESHOLD}%)"
        # The runbook's usual grower: the workers (restarting them loses nothing).
        restart_service worker || true
    fi
    if ((rc == 0)); then
        log "disk and memory below thresholds (${IR_DISK_THRESHOLD}% / ${IR_MEMORY_THRESHOLD}%)"
    fi
    return "$rc"
}

handle_queue_stuck() {
    log "runbook: PendingMessagesStuck / WorkerDown / BeatDown: check worker, beat, Redis, restart what is down"
    check_health_once && { log "worker, beat and queue are healthy: nothing to fix"; return 0; }
    local failing restarted=0
    failing=" $(health_failing_list || true) "
    if [[ "$HEALTH_CODE" == "000" ]]; then
        failure "queue_stuck: the app does not answer: handle app_down first"
        return 1
    fi
    if [[ "$failing" == *" database "* ]]; then
        failure "queue_stuck: the database is failing: see DatabaseDown (not restarting workers)"
        return 1
    fi
    if [[ "$failing" == *" redis "* ]]; then
        failure "queue_stuck: Redis is failing: starting it, then restarting worker and beat"
        start_redis || true
        restart_service worker || true
        restart_service beat || true
        restarted=1
    else
        if [[ "$failing" == *" worker "* || "$failing" == *" pending "* ]]; then
            failure "queue_stuck: ${failing# } -> restarting the worker"
            restart_service worker || true
            restarted=1
        fi
        if [[ "$failing" == *" beat "* ]]; then
            failure "queue_stuck: beat not ticking -> restarting beat"
            restart_service beat || true
            restarted=1
        fi
    fi
    detect_deploy
    if [[ "$IR_DEPLOY" == local || "$restarted" == 0 ]]; then
        log "nothing restarted: re-check by hand once fixed"
        return 1
    fi
    if wait_for_health; then
        notify "queue_stuck: recovered"
        return 0
    fi
    failure "queue_stuck: still failing after the restarts; see the worker logs"
    recent_logs worker beat
    return 1
}

cmd_handle() {
    [[ $# -eq 1 ]] || usage_error "handle needs one alert: app_down, high_error_rate, resource_exhaustion or queue_stuck"
    detect_deploy
    log "deployment: $IR_DEPLOY; URL: $SMSADMIN_URL"
    case "$1" in
        app_down) handle_app_down ;;
        high_error_rate) handle_high_error_rate ;;
        resource_exhaustion) handle_resource_exhaustion ;;
        queue_stuck) handle_queue_stuck ;;
        *) usage_error "handle: unknown alert '$1'" ;;
    esac
}

main() {
    while [[ $# -gt 0 ]]; do
        case "$1" in
            --dry-run) IR_DRY_RUN=1; shift ;;
            -h | --help | help) printf '%s\n' "$IR_USAGE"; return 0 ;;
            *) break ;;
        esac
    done
    [[ $# -gt 0 ]] || usage_error "a command is needed"
    local command="$1"
    shift
    case "$command" in
        health) cmd_health "$@" ;;
        monitor) cmd_monitor "$@" ;;
        restart) cmd_restart "$@" ;;
        diagnostics) cmd_diagnostics "$@" ;;
        handle) cmd_handle "$@" ;;
        *) usage_error "unknown command '$command'" ;;
    esac
}

# Sourced by scripts/monitor.sh for its functions; run directly, it is the command.
if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
    main "$@"
fi
