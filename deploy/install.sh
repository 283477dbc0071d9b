#!/usr/bin/env bash
# Install or update SMS Admin on one Debian or Ubuntu server: PostgreSQL, Redis, nginx with
# Let's Encrypt, gunicorn + Celery worker + celery-beat under systemd.
#
#   sudo deploy/install.sh --domain sms.example.org --email ops@example.org
#
# Idempotent: run it again (after `git pull`, to change nothing) and it converges on the
# same result. The configuration /etc/smsadmin/smsadmin.env is created once, from
# .env.example with a generated SECRET_KEY and database password, and never overwritten.
set -euo pipefail

APP_USER=smsadmin
ROOT_OWNER=root
PREFIX=/opt/smsadmin
APP_DIR=$PREFIX/app
VENV=$PREFIX/venv
VAR_DIR=$PREFIX/var
CONF_DIR=/etc/smsadmin
ENV_FILE=$CONF_DIR/smsadmin.env
ACME_ROOT=/var/www/letsencrypt
NGINX_SITE=/etc/nginx/sites-available/smsadmin
UNITS=(smsadmin-web.service smsadmin-worker.service smsadmin-beat.service)
PACKAGES=(python3 python3-venv python3-pip postgresql redis-server nginx certbot rsync
    openssl ca-certificates)

SOURCE_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DOMAIN=""
EMAIL=""
DRY_RUN=0
SKIP_PACKAGES=0

usage() {
    cat <<EOF
Usage: $0 --domain HOST [--email ADDRESS] [--source DIR] [--skip-packages] [--dry-run]

Installs or updates SMS Admin on this Debian/Ubuntu server (run as root):
  apt packages (${PACKAGES[*]}),
  the system user $APP_USER, $APP_DIR (a copy of the checkout), $VENV, $VAR_DIR,
  $ENV_FILE (created once, never overwritten), a local PostgreSQL role and database,
  the systemd units (smsadmin.target: web, worker, beat), the nginx site, a Let's Encrypt
  certificate (with --email), then migrate, collectstatic and a restart.

  --domain HOST     the public host name (ALLOWED_HOSTS, PUBLIC_BASE_URL, the certificate);
                    needed the first time, afterwards read from $ENV_FILE
  --email ADDRESS   ask Let's Encrypt for a certificate (certbot --webroot); without it
                    and without a certificate, nginx serves only the http challenge site
  --source DIR      the checkout to install (default: $SOURCE_DIR)
  --skip-packages   do not run apt-get
  --dry-run         print what would be done, change nothing (needs no root)
  -h, --help        this text
EOF
}

log() { echo "[install] $*"; }
die() {
    echo "[install] error: $*" >&2
    exit 1
}

# Run a command, or only show it with --dry-run.
run() {
    if [ "$DRY_RUN" = 1 ]; then
        echo "+ $*"
    else
        "$@"
    fi
}

# Write stdin to a file (mode, owner) only when its content changed.
write_file() { # path mode owner:group
    local path=$1 mode=$2 owner=$3 tmp
    tmp="$(mktemp)"
    cat >"$tmp"
    if [ "$DRY_RUN" = 1 ]; then
        if [ -f "$path" ] && cmp -s "$tmp" "$path"; then
            echo "+ unchanged: $path"
        else
            echo "+ write $path ($mode $owner)"
        fi
        rm -f "$tmp"
        return 0
    fi
    if [ -f "$path" ] && cmp -s "$tmp" "$path"; then
        rm -f "$tmp"
    else
        install -m "$mode" -o "${owner%%:*}" -g "${owner##*:}" "$tmp" "$path"
        rm -f "$tmp"
        log "wrote $path"
    fi
    chmod "$mode" "$path"
    chown "$owner" "$path"
}

parse_arguments() {
    while [ $# -gt 0 ]; do
        case "$1" in
        --domain) DOMAIN=${2:?--domain needs a host name}; shift 2 ;;
        --domain=*) DOMAIN=${1#*=}; shift ;;
        --email) EMAIL=${2:?--email needs an address}; shift 2 ;;
        --email=*) EMAIL=${1#*=}; shift ;;
        --source) SOURCE_DIR=${2:?--source needs a directory}; shift 2 ;;
        --source=*) SOURCE_DIR=${1#*=}; shift ;;
        --skip-packages) SKIP_PACKAGES=1; shift ;;
        --dry-run) DRY_RUN=1; shift ;;
        -h | --help) usage; exit 0 ;;
        *) usage >&2; die "unknown argument: $1" ;;
        esac
    done
    [ -f "$SOURCE_DIR/manage.py" ] || die "$SOURCE_DIR is not an SMS Admin checkout"
    if [ -z "$DOMAIN" ] && [ -f "$ENV_FILE" ]; then
        DOMAIN="$(env_value ALLOWED_HOSTS | cut -d, -f1)"
    fi
    [ -n "$DOMAIN" ] || die "--domain is needed the first time"
    [[ "$DOMAIN" =~ ^[A-Za-z0-9.-]+$ ]] || die "not a host name: $DOMAIN"
}

preflight() {
    if [ "$DRY_RUN" = 1 ]; then
        log "dry run: nothing is changed"
        return 0
    fi
    [ "$(id -u)" = 0 ] || die "run as root (or with --dry-run)"
    [ -f /etc/debian_version ] || die "this script is for Debian and Ubuntu"
}

# The value of KEY in the environment file, as systemd reads it (last one wins).
env_value() { # key
    [ -f "$ENV_FILE" ] || return 0
    sed -n "s/^$1=//p" "$ENV_FILE" | tail -n 1
}

install_packages() {
    if [ "$SKIP_PACKAGES" = 1 ]; then
        return 0
    fi
    local missing=()
    for package in "${PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" ||
            missing+=("$package")
    done
    if [ ${#missing[@]} = 0 ]; then
        log "apt packages already installed"
        return 0
    fi
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    run apt-get update -qq
    run apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

create_user_and_layout() {
    if ! id "$APP_USER" >/dev/null 2>&1; then
        run useradd --system --user-group --home-dir "$PREFIX" --no-create-home \
            --shell /usr/sbin/nologin "$APP_USER"
    fi
    # Code and venv belong to root (the services cannot change them); var/ is theirs.
    run install -d -m 0755 -o root -g root "$PREFIX" "$APP_DIR" "$VENV"
    # nginx (www-data) may traverse var/ and read static/, nothing else.
    run install -d -m 0711 -o "$APP_USER" -g "$APP_USER" "$VAR_DIR"
    run install -d -m 0755 -o "$APP_USER" -g "$APP_USER" "$VAR_DIR/static"
    run install -d -m 0750 -o "$APP_USER" -g "$APP_USER" "$VAR_DIR/media" "$VAR_DIR/archive" \
        "$VAR_DIR/prometheus"
    run install -d -m 0750 -o root -g "$APP_USER" "$CONF_DIR"
    run install -d -m 0755 -o root -g root "$ACME_ROOT"
}

copy_checkout() {
    if [ "$(realpath "$SOURCE_DIR")" = "$(realpath -m "$APP_DIR")" ]; then
        log "installing the checkout in place ($APP_DIR)"
        return 0
    fi
    log "copying $SOURCE_DIR to $APP_DIR"
    run rsync -a --delete --chown=root:root \
        --exclude=.git/ --exclude=.venv/ --exclude=/var/ --exclude=.env \
        --exclude=__pycache__/ --exclude='*.pyc' --exclude='*.egg-info/' \
        --exclude=.pytest_cache/ --exclude=.ruff_cache/ \
        "$SOURCE_DIR/" "$APP_DIR/"
}

install_venv() {
    if [ ! -x "$VENV/bin/python" ]; then
        run python3 -m venv "$VENV"
    fi
    run "$VENV/bin/python" -m pip install --quiet --upgrade pip
    # Editable: settings find templates/ and the app folders next to manage.py.
    run "$VENV/bin/python" -m pip install --quiet --upgrade -e "$APP_DIR"
    # The services cannot write __pycache__ in the read-only code: compile it now.
    run "$VENV/bin/python" -m compileall -q "$APP_DIR"
}

# Set KEY=VALUE in a file: replaces "KEY=..." or "# KEY=...", else appends.
set_key() { # file key value
    local file=$1 key=$2 value=$3
    if grep -qE "^#? ?$key=" "$file"; then
        python3 - "$file" "$key" "$value" <<'PY'
import re, sys
path, key, value = sys.argv[1:]
text = open(path).read()
pattern = re.compile(rf"^#? ?{re.escape(key)}=.*$", re.M)
text = pattern.sub(lambda _: f"{key}={value}", text, count=1)
open(path, "w").write(text)
PY
    else
        echo "$key=$value" >>"$file"
    fi
}

create_environment_file() {
    if [ -f "$ENV_FILE" ]; then
        log "$ENV_FILE exists: kept as it is"
        return 0
    fi
    log "creating $ENV_FILE from .env.example (new SECRET_KEY and database password)"
    if [ "$DRY_RUN" = 1 ]; then
        echo "+ write $ENV_FILE (0640 root:$APP_USER)"
        return 0
    fi
    local tmp secret password
    tmp="$(mktemp)"
    cp "$SOURCE_DIR/.env.example" "$tmp"
    secret="$(python3 -c 'import secrets; print(secrets.token_urlsafe(50))')"
    password="$(openssl rand -hex 24)"
    set_key "$tmp" DJANGO_ENV production
    set_key "$tmp" SECRET_KEY "$secret"
    set_key "$tmp" ALLOWED_HOSTS "$DOMAIN"
    set_key "$tmp" CSRF_TRUSTED_ORIGINS "https://$DOMAIN"
    set_key "$tmp" TRUSTED_PROXY_COUNT 1
    set_key "$tmp" PUBLIC_BASE_URL "https://$DOMAIN"
    set_key "$tmp" DATABASE_URL "postgres://$APP_USER:$password@127.0.0.1:5432/$APP_USER"
    set_key "$tmp" REDIS_URL redis://127.0.0.1:6379/0
    set_key "$tmp" STATIC_ROOT "$VAR_DIR/static"
    set_key "$tmp" MEDIA_ROOT "$VAR_DIR/media"
    set_key "$tmp" ARCHIVE_ROOT "$VAR_DIR/archive"
    # Web and worker write their metrics here and /metrics adds them up (writable: var/).
    set_key "$tmp" PROMETHEUS_MULTIPROC_DIR "$VAR_DIR/prometheus"
    {
        echo
        echo "# --- Processes (deploy/gunicorn.conf.py, deploy/systemd) ----------------------"
        echo "GUNICORN_BIND=127.0.0.1:8000"
        echo "# GUNICORN_WORKERS=4"
        echo "# Celery worker processes: match SMS_SEND_TASK_CHAINS."
        echo "CELERY_WORKER_CONCURRENCY=2"
    } >>"$tmp"
    install -m 0640 -o "$ROOT_OWNER" -g "$APP_USER" "$tmp" "$ENV_FILE"
    rm -f "$tmp"
}

# The local database named in DATABASE_URL: its role (with that password) and database.
setup_database() {
    local url user password host name
    url="$(env_value DATABASE_URL)"
    if [ "$DRY_RUN" = 1 ] && [ -z "$url" ]; then
        echo "+ create the PostgreSQL role and database $APP_USER on 127.0.0.1"
        return 0
    fi
    if [[ ! "$url" =~ ^postgres(ql)?://([^:@/]+):([^@/]+)@(127\.0\.0\.1|localhost)(:5432)?/([A-Za-z0-9_]+)$ ]]; then
        log "DATABASE_URL is not a local PostgreSQL database: skipping its set-up"
        return 0
    fi
    user=${BASH_REMATCH[2]} password=${BASH_REMATCH[3]} host=${BASH_REMATCH[4]}
    name=${BASH_REMATCH[6]}
    log "PostgreSQL role and database $name on $host"
    run systemctl enable --now postgresql
    if [ "$DRY_RUN" = 1 ]; then
        echo "+ psql: create or update role $user, create database $name owned by it"
        return 0
    fi
    runuser -u postgres -- psql -v ON_ERROR_STOP=1 -q \
        -v user="$user" -v password="$password" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN', :'user')
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'user') \gexec
SELECT format('ALTER ROLE %I WITH LOGIN PASSWORD %L', :'user', :'password') \gexec
SQL
    if ! runuser -u postgres -- psql -tAc "SELECT 1 FROM pg_database WHERE datname = '$name'" |
        grep -q 1; then
        runuser -u postgres -- createdb --owner="$user" "$name"
    fi
}

install_units() {
    local changed=0 unit
    for unit in "${UNITS[@]}" smsadmin.target; do
        if ! cmp -s "$SOURCE_DIR/deploy/systemd/$unit" "/etc/systemd/system/$unit"; then
            changed=1
        fi
        write_file "/etc/systemd/system/$unit" 0644 root:root <"$SOURCE_DIR/deploy/systemd/$unit"
    done
    if [ "$changed" = 1 ]; then
        run systemctl daemon-reload
    fi
    run systemctl enable redis-server.service
    run systemctl enable smsadmin.target "${UNITS[@]}"
}

install_nginx_site() {
    local certificate=/etc/letsencrypt/live/$DOMAIN/fullchain.pem
    if [ ! -f "$certificate" ] && [ -n "$EMAIL" ]; then
        # First the challenge site alone (nginx cannot load the TLS server without a
        # certificate), then certbot, then the whole site.
        sed -n '/^# --- http/,/^# --- end http/p' "$SOURCE_DIR/deploy/nginx/smsadmin.conf" |
            sed "s/sms\.example\.org/$DOMAIN/g" | write_file "$NGINX_SITE" 0644 root:root
        enable_site_and_reload
        run certbot certonly --webroot -w "$ACME_ROOT" -d "$DOMAIN" --email "$EMAIL" \
            --agree-tos --non-interactive --keep-until-expiring
    fi
    if [ -f "$certificate" ] || [ "$DRY_RUN" = 1 ]; then
        sed "s/sms\.example\.org/$DOMAIN/g" "$SOURCE_DIR/deploy/nginx/smsadmin.conf" |
            write_file "$NGINX_SITE" 0644 root:root
    else
        log "no certificate for $DOMAIN yet: only the http challenge site is served;"
        log "run again with --email ADDRESS to get one from Let's Encrypt"
        sed -n '/^# --- http/,/^# --- end http/p' "$SOURCE_DIR/deploy/nginx/smsadmin.conf" |
            sed "s/sms\.example\.org/$DOMAIN/g" | write_file "$NGINX_SITE" 0644 root:root
    fi
    # Renewed certificates are picked up by a reload (certbot's timer renews them).
    run install -d -m 0755 /etc/letsencrypt/renewal-hooks/deploy
    printf '#!/bin/sh\nsystemctl reload nginx\n' |
        write_file /etc/letsencrypt/renewal-hooks/deploy/reload-nginx 0755 root:root
    enable_site_and_reload
}

enable_site_and_reload() {
    run ln -sfn "$NGINX_SITE" /etc/nginx/sites-enabled/smsadmin
    run rm -f /etc/nginx/sites-enabled/default
    run nginx -t -q
    run systemctl enable nginx
    if [ "$DRY_RUN" = 1 ] || systemctl is-active --quiet nginx; then
        run systemctl reload nginx
    else
        run systemctl start nginx
    fi
}

# A management command as the service user, with the services' environment.
manage() {
    if [ "$DRY_RUN" = 1 ]; then
        echo "+ (as $APP_USER, with $ENV_FILE) manage.py $*"
        return 0
    fi
    (
        while IFS= read -r line || [ -n "$line" ]; do
            case "$line" in
            '' | '#'*) continue ;;
            *=*) export "${line?}" ;;
            esac
        done <"$ENV_FILE"
        cd "$APP_DIR"
        umask 0022
        runuser -u "$APP_USER" -- "$VENV/bin/python" manage.py "$@"
    )
}

# /usr/local/bin/smsadmin-manage: manage.py as the service user, with the services'
# environment (the file is systemd's format, not shell: values may hold spaces).
install_manage_command() {
    write_file /usr/local/bin/smsadmin-manage 0755 root:root <<EOF
#!/usr/bin/env bash
# manage.py as $APP_USER with $ENV_FILE (installed by deploy/install.sh).
set -euo pipefail
while IFS= read -r line || [ -n "\$line" ]; do
    case "\$line" in
    '' | '#'*) continue ;;
    *=*) export "\${line?}" ;;
    esac
done <"$ENV_FILE"
cd "$APP_DIR"
exec runuser -u "$APP_USER" -- "$VENV/bin/python" manage.py "\$@"
EOF
}

migrate_and_restart() {
    run systemctl enable --now redis-server.service
    manage check --deploy --fail-level ERROR
    manage migrate --no-input
    manage collectstatic --no-input --clear --verbosity 0
    # Stop everything, then start afresh: the multiprocess metrics folder is emptied only
    # while no process writes to it.
    run systemctl stop "${UNITS[@]}"
    local metrics
    metrics="$(env_value PROMETHEUS_MULTIPROC_DIR)"
    if [ -n "$metrics" ] && [ -d "$metrics" ]; then
        run find "$metrics" -mindepth 1 -maxdepth 1 -name '*.db' -delete
    fi
    run systemctl start smsadmin.target "${UNITS[@]}"
}

main() {
    parse_arguments "$@"
    preflight
    install_packages
    create_user_and_layout
    copy_checkout
    install_venv
    create_environment_file
    setup_database
    install_units
    install_nginx_site
    install_manage_command
    migrate_and_restart
    log "done: https://$DOMAIN/admin/ (systemctl status smsadmin.target; journalctl -u 'smsadmin-*')"
}

# Sourced (deploy/tests), only the functions are defined.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    main "$@"
fi
