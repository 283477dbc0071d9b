#!/usr/bin/env bash
# Usage: terraform/deploy.sh <environment dir>   e.g. terraform/deploy.sh terraform/environments/production
# Runs terraform init (with <dir>/backend.hcl as -backend-config when present), plan, and
# after you type the environment's name, apply of exactly that plan.
set -euo pipefail

if [[ $# -ne 1 || ! -d "$1" ]]; then
  echo "usage: $0 <environment directory>" >&2
  exit 2
fi

env_dir=$(cd "$1" && pwd)
env_name=$(basename "$env_dir")
plan_file="$env_dir/tfplan"

init_args=(-input=false)
if [[ -f "$env_dir/backend.hcl" ]]; then
  init_args+=("-backend-config=$env_dir/backend.hcl")
fi

cleanup() { rm -f "$plan_file"; }
trap cleanup EXIT

terraform -chdir="$env_dir" init "${init_args[@]}"
terraform -chdir="$env_dir" plan -input=false -out="$plan_file"

echo
read -r -p "Apply this plan to '$env_name'? Type the environment name to confirm: " answer
if [[ "$answer" != "$env_name" ]]; then
  echo "Confirmation did not match '$env_name'; nothing applied." >&2
  exit 1
fi

terraform -chdir="$env_dir" apply -input=false "$plan_file"
