"""Static checks for terraform/: HCL syntax, checkov, shellcheck and key invariants.

Terraform itself is not needed. Run: .venv/bin/pytest -p no:randomly -n 0 terraform/tests
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import hcl2
import pytest

TF_ROOT = Path(__file__).resolve().parents[1]
TF_FILES = sorted(p for p in TF_ROOT.rglob("*.tf") if ".terraform" not in p.parts)
WORLD = {"0.0.0.0/0", "::/0"}
SKIP_RE = re.compile(r"#\s*checkov:skip=(CKV2?_[A-Z]+_\d+)(?::(.*))?")


def _norm(value):
    """Make python-hcl2 (v4+, plain values, quoted strings) and checkov's bc-python-hcl2
    (every attribute wrapped in a list) look alike: plain values, unquoted strings."""
    if isinstance(value, dict):
        return {k: _norm(v) for k, v in value.items() if not k.startswith("__")}
    if isinstance(value, list):
        items = [_norm(v) for v in value]
        return items[0] if len(items) == 1 else items
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def _unquote_keys(value):
    """python-hcl2 8 keeps block labels quoted ('"aws_ecs_service"'); older ones do not."""
    if isinstance(value, dict):
        return {
            (k[1:-1] if len(k) >= 2 and k[0] == k[-1] == '"' else k): _unquote_keys(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_unquote_keys(v) for v in value]
    return value


def _load(path: Path) -> dict:
    with path.open() as fh:
        return _unquote_keys(hcl2.load(fh))


def _blocks(doc: dict, kind: str, type_: str) -> dict[str, dict]:
    """{name: body} of every `kind "type_" "name"` block (resource/data)."""
    found = {}
    for entry in doc.get(kind, []):
        for name, body in entry.get(type_, {}).items():
            found[name] = _norm(body[0] if isinstance(body, list) else body)
    return found


def _as_list(value):
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _sub_blocks(body: dict, key: str) -> list[dict]:
    return [b for b in _as_list(body.get(key)) if isinstance(b, dict)]


def _locals(doc: dict) -> dict:
    merged = {}
    for entry in doc.get("locals", []):
        merged.update(_norm(entry))
    return merged


@pytest.mark.parametrize("path", TF_FILES, ids=lambda p: str(p.relative_to(TF_ROOT)))
def test_tf_file_parses(path):
    try:
        _load(path)
    except Exception as exc:  # any parser error is a syntax error in that file
        pytest.fail(f"{path.relative_to(TF_ROOT)} does not parse: {exc}")


def test_found_the_tree():
    assert len(TF_FILES) > 30
    for module in (
        "network",
        "database",
        "cache",
        "ecs",
        "alb",
        "storage",
        "secrets",
        "ecr",
        "logs_alarms",
    ):
        assert (TF_ROOT / "modules" / module / "main.tf").is_file(), module


# --- checkov --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def checkov_report() -> dict:
    # checkov pins old boto3/packaging, so it lives in a venv of its own (make test makes it).
    exe = Path(__file__).resolve().parents[2] / ".venv-checkov" / "bin" / "checkov"
    command = [str(exe) if exe.exists() else "checkov"]
    if not shutil.which(command[0]):
        pytest.fail("checkov is not installed: run make test (it creates .venv-checkov)")
    proc = subprocess.run(  # noqa: S603 - fixed arguments
        [
            *command,
            "-d",
            str(TF_ROOT),
            "--framework",
            "terraform",
            "--quiet",
            "--compact",
            "-o",
            "json",
            "--skip-download",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if not proc.stdout.strip():
        pytest.fail(f"checkov produced no report (rc={proc.returncode}): {proc.stderr[-2000:]}")
    report = json.loads(proc.stdout)
    reports = report if isinstance(report, list) else [report]
    assert reports, "empty checkov report"
    return reports[0]


def test_checkov_parsed_everything(checkov_report):
    assert checkov_report["summary"]["parsing_errors"] == 0
    assert checkov_report["summary"]["resource_count"] > 50


def test_checkov_no_unexplained_failures(checkov_report):
    # Offline runs carry no severities (those come from the Prisma API), so every failure
    # counts as HIGH: it must be fixed or skipped with a reason next to the resource.
    failed = checkov_report["results"].get("failed_checks", [])
    serious = [c for c in failed if (c.get("severity") or "HIGH").upper() in {"HIGH", "CRITICAL"}]
    assert not serious, "\n".join(
        f"{c['check_id']} {c['resource']} ({c['file_path']}): {c['check_name']}" for c in serious
    )


def test_every_checkov_skip_has_a_reason():
    skips = []
    for path in TF_FILES:
        for lineno, line in enumerate(path.read_text().splitlines(), 1):
            match = SKIP_RE.search(line)
            if match:
                skips.append((path, lineno, match.group(1), (match.group(2) or "").strip()))
    assert skips, "expected the documented skips"
    unexplained = [
        f"{p.relative_to(TF_ROOT)}:{n} {cid}" for p, n, cid, why in skips if len(why) < 20
    ]
    assert not unexplained, f"skips without a written reason: {unexplained}"


# --- shellcheck -----------------------------------------------------------------------


@pytest.mark.parametrize("script", ["deploy.sh", "destroy.sh"])
def test_shell_scripts(script):
    path = TF_ROOT / script
    text = path.read_text()
    assert text.startswith("#!/usr/bin/env bash\n")
    assert "set -euo pipefail" in text
    assert "read -r" in text  # the typed confirmation
    shellcheck = shutil.which("shellcheck")
    if shellcheck is None:
        pytest.skip("shellcheck is not installed (Debian: apt-get install shellcheck)")
    proc = subprocess.run([shellcheck, str(path)], capture_output=True, text=True, check=False)  # noqa: S603
    assert proc.returncode == 0, proc.stdout + proc.stderr


# --- Invariants that matter -----------------------------------------------------------


def test_beat_runs_exactly_one_scheduler():
    services = _blocks(_load(TF_ROOT / "modules/ecs/main.tf"), "resource", "aws_ecs_service")
    beat = services["beat"]
    assert beat["desired_count"] == 1
    assert beat["deployment_maximum_percent"] == 100
    assert beat["deployment_minimum_healthy_percent"] == 0
    # No autoscaling target may point at the beat service.
    targets = _blocks(
        _load(TF_ROOT / "modules/ecs/main.tf"), "resource", "aws_appautoscaling_target"
    )
    assert not any("aws_ecs_service.beat" in str(t.get("resource_id")) for t in targets.values())


def test_rds_is_private_and_encrypted():
    db = _blocks(_load(TF_ROOT / "modules/database/main.tf"), "resource", "aws_db_instance")
    assert len(db) == 1
    (instance,) = db.values()
    assert instance["publicly_accessible"] is False
    assert instance["storage_encrypted"] is True
    assert instance["deletion_protection"] is True
    assert instance["backup_retention_period"] == "${var.backup_retention_days}"
    assert instance["performance_insights_kms_key_id"]


def _covers(rule: dict, port: int) -> bool:
    low, high = rule.get("from_port"), rule.get("to_port", rule.get("from_port"))
    if rule.get("ip_protocol", rule.get("protocol")) in ("-1", -1, "all"):
        return True
    if not isinstance(low, int) or not isinstance(high, int):
        raise AssertionError(f"cannot resolve ports of {rule}")
    return low <= port <= high


def test_single_host_does_not_open_ssh_or_app_port_to_the_world():
    doc = _load(TF_ROOT / "single-host/main.tf")
    local_values = _locals(doc)

    rules = []
    for sg in _blocks(doc, "resource", "aws_security_group").values():
        for ingress in _sub_blocks(sg, "ingress"):
            cidrs = _as_list(ingress.get("cidr_blocks")) + _as_list(ingress.get("ipv6_cidr_blocks"))
            rules.append((ingress, cidrs))
    for name, rule in _blocks(doc, "resource", "aws_vpc_security_group_ingress_rule").items():
        for_each = str(rule.get("for_each", ""))
        match = re.fullmatch(r"\$\{local\.(\w+)\}", for_each)
        if match:  # expand for_each over a literal local map
            for item in local_values[match.group(1)].values():
                resolved = {
                    k: (
                        item[m.group(1)]
                        if (m := re.fullmatch(r"\$\{each\.value\.(\w+)\}", str(v)))
                        else v
                    )
                    for k, v in rule.items()
                }
                rules.append((resolved, [resolved.get("cidr_ipv4"), resolved.get("cidr_ipv6")]))
        elif for_each == "${toset(var.admin_cidr_blocks)}":
            assert name == "ssh_admin"  # only administrator CIDRs, checked below
        else:
            rules.append((rule, [rule.get("cidr_ipv4"), rule.get("cidr_ipv6")]))

    assert rules, "no ingress rules found"
    for rule, cidrs in rules:
        if WORLD & {c for c in cidrs if c}:
            assert not _covers(rule, 22), f"SSH open to the world: {rule}"
            assert not _covers(rule, 8000), f"app port open to the world: {rule}"

    variables = {}
    for entry in _load(TF_ROOT / "single-host/variables.tf").get("variable", []):
        variables.update(_norm(entry))
    assert variables["admin_cidr_blocks"]["default"] in ([], None)


def test_containers_get_secrets_from_ssm_not_plain_environment():
    text = (TF_ROOT / "modules/ecs/main.tf").read_text()
    assert "secrets     = local.secrets" in text
    secrets_vars = (TF_ROOT / "modules/secrets/variables.tf").read_text()
    for name in (
        "SECRET_KEY",
        "DATABASE_URL",
        "REDIS_URL",
        "TWILIO_ACCOUNT_SID",
        "TWILIO_AUTH_TOKEN",
        "OPENAI_API_KEY",
        "METRICS_TOKEN",
    ):
        assert f'"{name}"' in secrets_vars, name
    params = _blocks(_load(TF_ROOT / "modules/secrets/main.tf"), "resource", "aws_ssm_parameter")
    assert params["app"]["type"] == "SecureString"
    ignored = [str(v).strip("${}") for v in _as_list(params["app"]["lifecycle"]["ignore_changes"])]
    assert ignored == ["value"]
