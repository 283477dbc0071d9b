"""The single-server deployment's files are valid to the tools that will read them:
shellcheck for install.sh, ``nginx -t`` for the site, ``systemd-analyze`` for the units,
gunicorn for its config; and install.sh's environment file passes production's checks."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from deploy import testing

DEPLOY = testing.DEPLOY_DIR
ROOT = DEPLOY.parent
INSTALL = DEPLOY / "install.sh"
UNITS = sorted((DEPLOY / "systemd").glob("*.service"))
VENV_BIN = Path(sys.executable).parent


def run(*command: str | Path, **options) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603
        [str(part) for part in command],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        **options,
    )


# --- install.sh ---------------------------------------------------------------------


def test_install_script_is_shellcheck_clean():
    shellcheck = shutil.which("shellcheck")
    assert shellcheck, "shellcheck is not installed (scripts/ensure-test-services.sh does it)"
    result = run(shellcheck, "--severity=style", INSTALL)
    assert result.returncode == 0, result.stdout + result.stderr


def test_install_script_is_strict_and_explains_itself():
    text = INSTALL.read_text()
    assert "set -euo pipefail" in text
    result = run("bash", INSTALL, "--help")
    assert result.returncode == 0, result.stderr
    assert "--dry-run" in result.stdout
    assert run("bash", INSTALL, "--no-such-option").returncode != 0


def test_a_dry_run_changes_nothing_and_shows_every_step():
    result = run("bash", INSTALL, "--dry-run", "--skip-packages", "--domain", "sms.test")
    assert result.returncode == 0, result.stdout + result.stderr
    for step in (
        "useradd --system",
        "pip install --quiet --upgrade -e /opt/smsadmin/app",
        "/etc/smsadmin/smsadmin.env",
        "systemctl enable smsadmin.target",
        "nginx -t",
        "manage.py migrate --no-input",
        "manage.py collectstatic --no-input",
        "systemctl stop smsadmin-web.service smsadmin-worker.service smsadmin-beat.service",
        "systemctl start smsadmin.target",
    ):
        assert step in result.stdout, step


def _environment_file_of_install(tmp_path: Path, *, domain: str) -> subprocess.CompletedProcess:
    """install.sh's create_environment_file, sourced, writing into tmp_path."""
    group = run("id", "-gn").stdout.strip()
    user = run("id", "-un").stdout.strip()
    script = f"""
        set -euo pipefail
        source {INSTALL}
        APP_USER={group} ROOT_OWNER={user} ENV_FILE={tmp_path}/smsadmin.env
        SOURCE_DIR={ROOT} DOMAIN={domain}
        create_environment_file
    """
    return run("bash", "-c", script)


def test_the_environment_file_is_created_once_and_passes_production_checks(tmp_path):
    first = _environment_file_of_install(tmp_path, domain="sms.test")
    assert first.returncode == 0, first.stdout + first.stderr
    env_file = tmp_path / "smsadmin.env"
    created = env_file.read_text()
    assert oct(env_file.stat().st_mode & 0o777) == "0o640"

    again = _environment_file_of_install(tmp_path, domain="other.test")
    assert again.returncode == 0, again.stderr
    assert "kept as it is" in again.stdout
    assert env_file.read_text() == created  # never overwritten: the secret key stays

    values = dict(
        line.split("=", 1)
        for line in created.splitlines()
        if line and not line.startswith("#") and "=" in line
    )
    assert values["DJANGO_ENV"] == "production"
    assert len(values["SECRET_KEY"]) >= 50
    assert values["ALLOWED_HOSTS"] == "sms.test"
    assert values["PUBLIC_BASE_URL"] == "https://sms.test"
    assert re.fullmatch(
        r"postgres://(\w+):[0-9a-f]{48}@127\.0\.0\.1:5432/\1", values["DATABASE_URL"]
    )
    # Settings accept it in production (they refuse weak or missing values).
    environment = {"PATH": os.environ["PATH"], **values}
    # Settings create this folder: not under /opt on the machine running the tests.
    environment["PROMETHEUS_MULTIPROC_DIR"] = str(tmp_path / "prometheus")
    loaded = run(
        sys.executable,
        "-c",
        "import django; from django.conf import settings; django.setup(); "
        "print(settings.DEBUG, settings.PUBLIC_BASE_URL, settings.STATIC_ROOT)",
        env={**environment, "DJANGO_SETTINGS_MODULE": "smsadmin.settings"},
    )
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.split() == ["False", "https://sms.test", "/opt/smsadmin/var/static"]


# --- nginx --------------------------------------------------------------------------


@pytest.fixture
def nginx_prefix(tmp_path):
    prefix = tmp_path / "nginx"
    (prefix / "static").mkdir(parents=True)
    (prefix / "acme").mkdir()
    return prefix


def test_the_nginx_site_passes_nginx_t_with_tls(nginx_prefix):
    certificates = testing.self_signed_certificate(nginx_prefix / "live" / testing.DOMAIN)
    site = testing.render_site(
        upstream="127.0.0.1:9",
        static_root=nginx_prefix / "static",
        acme_root=nginx_prefix / "acme",
        http_port=testing.free_port(),
        https_port=testing.free_port(),
        certificate_dir=certificates,
    )
    conf = testing.write_prefix(nginx_prefix, site)
    result = testing.nginx_test(nginx_prefix, conf)
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr
    # Only the expected warning: a self-signed certificate has no OCSP responder.
    warnings = [
        line
        for line in result.stderr.splitlines()
        if "[warn]" in line and "ssl_stapling" not in line and "user" not in line
    ]
    assert not warnings, result.stderr


def test_the_plain_http_variant_keeps_every_location_rule(nginx_prefix):
    site = testing.render_site(
        upstream="127.0.0.1:9",
        static_root=nginx_prefix / "static",
        acme_root=nginx_prefix / "acme",
        http_port=testing.free_port(),
    )
    real = testing.SITE_FILE.read_text()
    tls_server = real[real.index("# --- end http") :]
    for rule in re.findall(r"^\s*location [^{]+\{", tls_server, flags=re.M):
        assert rule in site
    directives = [line for line in site.splitlines() if not line.strip().startswith("#")]
    assert not [line for line in directives if "ssl_" in line or "ssl " in line]
    assert "return 301 https" not in site
    conf = testing.write_prefix(nginx_prefix, site)
    result = testing.nginx_test(nginx_prefix, conf)
    assert result.returncode == 0, result.stderr


def test_the_nginx_site_says_what_the_app_relies_on():
    site = testing.SITE_FILE.read_text()
    assert "proxy_set_header X-Forwarded-Proto https;" in site  # Twilio signs the https URL
    assert "proxy_set_header Host $host;" in site
    assert "location ^~ /.well-known/acme-challenge/" in site
    assert "/etc/letsencrypt/live/sms.example.org/fullchain.pem" in site
    # Imports up to IMPORT_MAX_BYTES (100 MB) through the admin; webhooks stay small.
    assert re.search(r"location /admin/ \{[^}]*client_max_body_size 110m;", site)
    assert re.search(r"location /webhooks/ \{[^}]*client_max_body_size 64k;", site)
    assert re.search(r"location \^~ /metrics \{[^}]*allow 127\.0\.0\.1;[^}]*deny all;", site)


# --- systemd ------------------------------------------------------------------------


def _systemd_analyze_works() -> str | None:
    binary = shutil.which("systemd-analyze")
    if not binary:
        return None
    probe = run(binary, "--version")
    return binary if probe.returncode == 0 else None


@pytest.fixture
def units_here(tmp_path):
    """The units with /opt/smsadmin pointing at this checkout, so their commands exist."""
    folder = tmp_path / "units"
    folder.mkdir()
    for unit in (DEPLOY / "systemd").iterdir():
        text = unit.read_text()
        text = text.replace("/opt/smsadmin/venv/bin", str(VENV_BIN))
        text = text.replace("/opt/smsadmin/app", str(ROOT))
        (folder / unit.name).write_text(text)
    return folder


def test_systemd_units_verify(units_here):
    binary = _systemd_analyze_works()
    if binary is None:
        pytest.skip("systemd-analyze is not available in this container")
    files = sorted(units_here.iterdir())
    result = run(binary, "verify", *files)
    # verify exits 0 on unknown keys and bad values: any line about our files is a failure.
    problems = [
        line for line in (result.stdout + result.stderr).splitlines() if str(units_here) in line
    ]
    assert result.returncode == 0, result.stdout + result.stderr
    assert not problems, result.stdout + result.stderr

    for unit in UNITS:
        exposure = run(binary, "security", "--offline=yes", units_here / unit.name)
        match = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", exposure.stdout)
        if match:  # older systemd has no --offline
            assert float(match.group(1)) <= 3.0, exposure.stdout


@pytest.mark.parametrize("unit", UNITS, ids=lambda path: path.name)
def test_each_unit_runs_as_smsadmin_with_the_hardening(unit):
    text = unit.read_text()
    for line in (
        "User=smsadmin",
        "EnvironmentFile=/etc/smsadmin/smsadmin.env",
        "WorkingDirectory=/opt/smsadmin/app",
        "Restart=on-failure",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ReadWritePaths=/opt/smsadmin/var",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "PrivateDevices=yes",
        "ProtectKernelTunables=yes",
        "ProtectKernelModules=yes",
        "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
        "CapabilityBoundingSet=",
        "SystemCallFilter=@system-service",
        "UMask=0027",
    ):
        assert re.search(rf"^{re.escape(line)}$", text, flags=re.M), line
    assert re.search(r"^ExecStart=/opt/smsadmin/venv/bin/", text, flags=re.M)


def test_the_worker_stops_warmly_and_there_is_one_beat():
    worker = (DEPLOY / "systemd" / "smsadmin-worker.service").read_text()
    assert "KillSignal=SIGTERM" in worker
    assert "KillMode=mixed" in worker
    assert "TimeoutStopSec=10min" in worker
    beat = (DEPLOY / "systemd" / "smsadmin-beat.service").read_text()
    assert beat.count("ExecStart=") == 1
    assert "DatabaseScheduler" in beat
    assert "@" not in (DEPLOY / "systemd").joinpath("smsadmin-beat.service").name  # no template


# --- gunicorn -----------------------------------------------------------------------


def test_gunicorn_config_loads():
    config = DEPLOY / "gunicorn.conf.py"
    result = run(VENV_BIN / "gunicorn", "--check-config", "-c", config, "smsadmin.wsgi")
    assert result.returncode == 0, result.stdout + result.stderr


def test_gunicorn_config_reads_the_environment(monkeypatch):
    monkeypatch.setenv("GUNICORN_BIND", "127.0.0.1:9100")
    monkeypatch.setenv("GUNICORN_WORKERS", "3")
    namespace: dict[str, object] = {}
    exec(compile((DEPLOY / "gunicorn.conf.py").read_text(), "gunicorn.conf.py", "exec"), namespace)  # noqa: S102
    assert namespace["bind"] == ["127.0.0.1:9100"]
    assert (namespace["workers"], namespace["worker_class"], namespace["threads"]) == (
        3,
        "gthread",
        2,
    )
    assert namespace["max_requests"] > 0
    assert namespace["max_requests_jitter"] > 0
    assert "127.0.0.1" in namespace["forwarded_allow_ips"]


def test_gunicorn_child_exit_marks_the_worker_dead(monkeypatch, tmp_path):
    from prometheus_client import multiprocess

    namespace: dict[str, object] = {}
    exec(compile((DEPLOY / "gunicorn.conf.py").read_text(), "gunicorn.conf.py", "exec"), namespace)  # noqa: S102
    dead: list[int] = []
    monkeypatch.setattr(multiprocess, "mark_process_dead", dead.append)

    class Worker:
        pid = 4242

    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    namespace["child_exit"](None, Worker())
    assert dead == []
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    namespace["child_exit"](None, Worker())
    assert dead == [4242]
