#!/usr/bin/env bash
# SMS Admin at a glance: /health, the last hour's messages, the services, recent logs and
# the host's CPU, memory and disk, on one screen, refreshed every 10 s (--once: print once).
#
# Same environment as scripts/incident-response.sh (SMSADMIN_URL, SMSADMIN_DEPLOY, ...),
# whose functions it uses.
set -euo pipefail

MONITOR_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=scripts/incident-response.sh
source "$MONITOR_DIR/incident-response.sh"

MONITOR_PROG="$(basename "$0")"
readonly MONITOR_USAGE="Usage: $MONITOR_PROG [--once] [--interval S]

  --once         print the status once and exit (0 healthy, 1 not)
  --interval S   seconds between refreshes (default 10)
  -h, --help     this help"

monitor_usage_error() {
    printf 'error: %s\n\n%s\n' "$1" "$MONITOR_USAGE" >&2
    exit 2
}

print_screen() {
    local rc=0
    detect_deploy
    printf 'SMS Admin status  %s  (%s, %s)\n' "$(date '+%Y-%m-%d %H:%M:%S')" "$SMSADMIN_URL" "$IR_DEPLOY"
    section "Health"
    fetch_health
    print_health_summary || rc=1
    local name ok detail
    while IFS=$'\t' read -r name ok detail; do
        printf '  %-10s %-8s %s\n' "$name" "$ok" "$detail"
    done < <(health_query checks)
    section "Last hour (from /health)"
    health_query stats || true
    section "Services"
    service_status
    section "CPU, memory, disk"
    echo "load: $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo n/a) on $(nproc 2>/dev/null || echo '?') CPUs;" \
        "memory used: $(memory_usage_percent)%"
    local disk mount
    read -r disk mount < <(disk_usage_percent)
    echo "fullest disk: ${disk}% (${mount:-?})"
    section "Recent logs"
    IR_LOG_LINES="${MONITOR_LOG_LINES:-8}" recent_logs | tail -n "${MONITOR_LOG_LINES:-8}"
    return "$rc"
}

monitor_main() {
    local once=0 interval=10
    while [[ $# -gt 0 ]]; do
        case "$1" in
            --once) once=1; shift ;;
            --interval) [[ $# -ge 2 ]] || monitor_usage_error "--interval needs a value"; interval="$2"; shift 2 ;;
            -h | --help) printf '%s\n' "$MONITOR_USAGE"; return 0 ;;
            *) monitor_usage_error "unknown argument '$1'" ;;
        esac
    done
    [[ "$interval" =~ ^[0-9]+([.][0-9]+)?$ ]] || monitor_usage_error "--interval must be a number of seconds"
    if ((once)); then
        print_screen
        return
    fi
    local screen
    while true; do
        # Build the screen first, then clear: no flicker of a half-drawn screen.
        screen="$(print_screen 2>&1 || true)"
        [[ -t 1 ]] && clear
        printf '%s\n' "$screen"
        sleep "$interval"
    done
}

monitor_main "$@"
