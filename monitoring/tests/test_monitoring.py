"""Checks of monitoring/: Prometheus config and alerts, Alertmanager, the Grafana dashboard.

promtool and amtool must be installed (``scripts/ensure-test-services.sh`` installs them,
``make test`` runs it first); when they are missing the tests install them with that
script, and fail, never skip, if they still cannot run.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

MONITORING = Path(__file__).resolve().parent.parent
ROOT = MONITORING.parent
PROMETHEUS = MONITORING / "prometheus"
ALERT_RULES = PROMETHEUS / "alert_rules.yml"
RULE_TESTS = sorted((PROMETHEUS / "tests").glob("*.yml"))
ALERTMANAGER = MONITORING / "alertmanager" / "alertmanager.yml"
DASHBOARD = MONITORING / "grafana" / "dashboards" / "smsadmin.json"
RUNBOOK = ROOT / "docs" / "runbook.md"
SECRETS = "/etc/prometheus/secrets/"

# Every metric the rules and the dashboard may use: what the app and the exporters expose.
# Histograms are listed by their base name (the _bucket/_sum/_count series).
KNOWN_METRICS = {
    "django_http_requests_total_by_view_transport_method",
    "django_http_responses_total_by_status_view_method",
    "django_http_requests_latency_seconds_by_view_method",
    "smsadmin_messages_total",
    "smsadmin_provider_send_seconds",
    "smsadmin_message_processing_seconds",
    "smsadmin_pending_messages",
    "smsadmin_oldest_pending_message_age_seconds",
    "smsadmin_rate_limit_waits_total",
    "smsadmin_provider_errors_total",
    "smsadmin_webhooks_total",
    "smsadmin_opt_outs_total",
    "smsadmin_suppressions_total",
    "smsadmin_campaigns",
    "smsadmin_campaign_messages",
    "smsadmin_worker_heartbeat_age_seconds",
    "smsadmin_beat_heartbeat_age_seconds",
    "node_cpu_seconds_total",
    "node_memory_MemAvailable_bytes",
    "node_memory_MemTotal_bytes",
    "node_filesystem_avail_bytes",
    "node_filesystem_size_bytes",
    "redis_up",
    "pg_up",
    "up",
}
HISTOGRAMS = {
    "django_http_requests_latency_seconds_by_view_method",
    "smsadmin_provider_send_seconds",
    "smsadmin_message_processing_seconds",
}
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")

PROMQL_KEYWORDS = {
    "and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right",
    "offset", "bool", "inf", "nan",
}  # fmt: skip


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        subprocess.run(  # noqa: S603 - the project's own script
            [str(ROOT / "scripts" / "ensure-test-services.sh"), "monitoring-tools"], check=False
        )
        path = shutil.which(name)
    if path is None:
        pytest.fail(
            f"{name} is not installed and scripts/ensure-test-services.sh could not install it"
            " (run it as root, or: apt-get install prometheus prometheus-alertmanager)"
        )
    return path


@pytest.fixture(scope="session")
def promtool() -> str:
    return _tool("promtool")


@pytest.fixture(scope="session")
def amtool() -> str:
    return _tool("amtool")


def run(*args: str | Path, cwd: Path | None = None, stdout_only: bool = False) -> str:
    done = subprocess.run(  # noqa: S603 - promtool/amtool on the repository's files
        [str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=120
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"{' '.join(map(str, args))} failed:\n{output}"
    return done.stdout if stdout_only else output


def load_yaml(path: Path):
    return yaml.safe_load(path.read_text())


def alert_rules() -> list[dict]:
    return [r for g in load_yaml(ALERT_RULES)["groups"] for r in g["rules"] if "alert" in r]


# -- PromQL metric names ----------------------------------------------------------------


def metric_names(expr: str) -> set[str]:
    """The metric names an expression selects (not functions, labels or keywords)."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"' r"|'(?:[^'\\]|\\.)*'", '""', expr)  # strings
    expr = re.sub(r"\{[^{}]*\}", " ", expr)  # label matchers
    expr = re.sub(r"\[[^\[\]]*\]", " ", expr)  # ranges, subqueries, $__rate_interval
    # label lists: by (a, b), without (...), on (...), ignoring (...), group_left (...)
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)", " ", expr)
    expr = re.sub(r"\$\{?\w+\}?", " ", expr)  # dashboard variables
    expr = re.sub(r"\b\d+(\.\d+)?(e[+-]?\d+)?[smhdwy]?\b", " ", expr)  # numbers, durations
    names = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", expr):
        name = match.group()
        following = expr[match.end() :].lstrip()
        if following.startswith("(") or name.lower() in PROMQL_KEYWORDS:
            continue  # a function or aggregation, or an operator
        names.add(name)
    return names


def unknown_metrics(expr: str) -> set[str]:
    unknown = set()
    for name in metric_names(expr):
        base = name
        for suffix in HISTOGRAM_SUFFIXES:
            if name.endswith(suffix) and name.removesuffix(suffix) in HISTOGRAMS:
                base = name.removesuffix(suffix)
        if base not in KNOWN_METRICS:
            unknown.add(name)
    return unknown


def test_metric_names_parses_promql():
    expr = (
        'histogram_quantile(0.95, sum by (job, le) (rate(x_seconds_bucket{job="a",le!="1"}'
        "[5m]))) > 30 and on (job) sum without (pid) (increase(y_total[$__rate_interval]"
        ' offset 10m)) or absent(z{a="b(c)"}) unless vector(1)'
    )
    assert metric_names(expr) == {"x_seconds_bucket", "y_total", "z"}
    assert unknown_metrics("rate(smsadmin_provider_send_seconds_bucket[5m])") == set()
    assert unknown_metrics("rate(smsadmin_messages_total_bucket[5m])") == {
        "smsadmin_messages_total_bucket"
    }


# -- Prometheus -------------------------------------------------------------------------


def test_prometheus_config_is_valid(promtool, tmp_path):
    # promtool checks that credentials files exist: check a copy whose secrets exist.
    config = (PROMETHEUS / "prometheus.yml").read_text()
    assert SECRETS in config, "the scrape token must come from a file, not the config"
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    for name in re.findall(re.escape(SECRETS) + r"([\w.-]+)", config):
        (secrets / name).write_text("test-token\n")
    (tmp_path / "prometheus.yml").write_text(config.replace(SECRETS, f"{secrets}/"))
    shutil.copy(ALERT_RULES, tmp_path / "alert_rules.yml")
    output = run(promtool, "check", "config", "prometheus.yml", cwd=tmp_path)
    assert "SUCCESS" in output


def test_prometheus_config_scrapes_everything():
    config = load_yaml(PROMETHEUS / "prometheus.yml")
    jobs = {c["job_name"]: c for c in config["scrape_configs"]}
    assert {"smsadmin", "node", "redis", "postgres", "alertmanager"} <= set(jobs)
    assert jobs["smsadmin"]["metrics_path"] == "/metrics"
    assert jobs["smsadmin"]["authorization"]["credentials_file"].startswith(SECRETS)
    assert config["rule_files"] == ["alert_rules.yml"]
    assert config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]


def test_alert_rules_are_valid(promtool):
    output = run(promtool, "check", "rules", ALERT_RULES)
    assert "SUCCESS" in output


@pytest.mark.parametrize("test_file", RULE_TESTS, ids=[p.name for p in RULE_TESTS])
def test_alert_rule_unit_tests_pass(promtool, test_file):
    output = run(promtool, "test", "rules", test_file.name, cwd=test_file.parent)
    assert "SUCCESS" in output


def test_every_alert_has_a_firing_and_a_quiet_test():
    assert RULE_TESTS, "no promtool tests in monitoring/prometheus/tests"
    firing: set[str] = set()
    quiet: set[str] = set()
    for test_file in RULE_TESTS:
        for case in load_yaml(test_file)["tests"]:
            for check in case.get("alert_rule_test", []):
                (firing if check.get("exp_alerts") else quiet).add(check["alertname"])
    alerts = {r["alert"] for r in alert_rules()}
    assert alerts - firing == set(), "alerts without a test where they fire"
    assert alerts - quiet == set(), "alerts without a test where they do not fire"
    assert (firing | quiet) - alerts == set(), "tests of alerts that do not exist"


def test_every_alert_is_labelled_annotated_and_in_the_runbook():
    runbook = RUNBOOK.read_text()
    anchors = set(re.findall(r'<a id="([\w-]+)"></a>', runbook)) | {
        re.sub(r"[^\w\- ]", "", h).strip().lower().replace(" ", "-")
        for h in re.findall(r"^#+\s+(.+)$", runbook, re.M)
    }
    for rule in alert_rules():
        name = rule["alert"]
        assert rule["labels"]["severity"] in {"critical", "warning"}, name
        annotations = rule["annotations"]
        assert annotations.get("summary"), name
        assert annotations.get("description"), name
        assert annotations["runbook_url"] == f"docs/runbook.md#{name.lower()}", name
        assert name.lower() in anchors, f"docs/runbook.md has no section for {name}"
        assert unknown_metrics(rule["expr"]) == set(), name


# -- Alertmanager -----------------------------------------------------------------------


def test_alertmanager_config_is_valid(amtool):
    output = run(amtool, "check-config", ALERTMANAGER)
    assert "SUCCESS" in output


@pytest.mark.parametrize(
    ("labels", "receiver"),
    [
        (["alertname=AppDown", "severity=critical", "job=smsadmin"], "page-oncall"),
        (["alertname=HighHttpErrorRate", "severity=warning", "job=smsadmin"], "email-oncall"),
    ],
)
def test_alertmanager_routes_by_severity(amtool, labels, receiver):
    output = run(
        amtool,
        "config",
        "routes",
        "test",
        f"--config.file={ALERTMANAGER}",
        *labels,
        stdout_only=True,
    )
    assert output.split() == [receiver]


def test_alertmanager_keeps_secrets_in_files():
    config = load_yaml(ALERTMANAGER)
    text = ALERTMANAGER.read_text()
    assert "smtp_auth_password:" not in text
    assert "api_url:" not in text
    assert config["global"]["smtp_auth_password_file"].startswith("/etc/alertmanager/secrets/")
    assert config["global"]["slack_api_url_file"].startswith("/etc/alertmanager/secrets/")
    assert config["route"]["group_by"] == ["alertname", "severity"]
    sources = {m for rule in config["inhibit_rules"] for m in rule["source_matchers"]}
    assert {'alertname="AppDown"', 'alertname="DatabaseDown"'} <= sources


# -- Grafana ----------------------------------------------------------------------------


def dashboard_panels(panels: list[dict]):
    for panel in panels:
        yield panel
        yield from dashboard_panels(panel.get("panels", []))


def test_grafana_dashboard():
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["title"] == "SMS Admin"
    panels = [p for p in dashboard_panels(dashboard["panels"]) if p["type"] != "row"]
    assert panels
    titles = set()
    for panel in panels:
        title = panel["title"]
        titles.add(title)
        assert panel.get("datasource", {}).get("uid") == "prometheus", title
        assert panel.get("targets"), f"panel {title!r} has no target"
        for target in panel["targets"]:
            assert target.get("expr"), title
            assert unknown_metrics(target["expr"]) == set(), title
    needed_panels = [
        "Web up", "Messages/s by status", "Delivery funnel", "Provider errors",
        "Pending messages", "Oldest pending", "Request latency", "CPU", "Memory",
    ]  # fmt: skip
    for needed in needed_panels:
        assert any(needed in t for t in titles), f"no panel for {needed}"


def test_grafana_provisioning_matches_the_dashboard():
    grafana = MONITORING / "grafana" / "provisioning"
    datasources = load_yaml(grafana / "datasources" / "prometheus.yml")["datasources"]
    assert [d["uid"] for d in datasources] == ["prometheus"]
    providers = load_yaml(grafana / "dashboards" / "smsadmin.yml")["providers"]
    assert providers[0]["type"] == "file"
    assert providers[0]["options"]["path"]
