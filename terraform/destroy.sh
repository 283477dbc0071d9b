#!/usr/bin/env bash
# Usage: terraform/destroy.sh <environment dir>
# Shows the destroy plan and, after you type the environment's name, destroys it.
# Deletion protection on the database and load balancer (and prevent_destroy on the
# database) stop this in production until they are switched off deliberately.
set -euo pipefail

if [[ $# -ne 1 || ! -d "$1" ]]; then
  echo "usage: $0 <environment directory>" >&2
  exit 2
fi

env_dir=$(cd "$1" && pwd)
env_name=$(basename "$env_dir")
plan_file="$env_dir/tfplan-destroy"

init_args=(-input=false)
if [[ -f "$env_dir/backend.hcl" ]]; then
  init_args+=("-backend-config=$env_dir/backend.hcl")
fi

cleanup() { rm -f "$plan_file"; }
trap cleanup EXIT

terraform -chdir="$env_dir" init "${init_args[@]}"
terraform -chdir="$env_dir" plan -destroy -input=false -out="$plan_file"

echo
echo "THIS DESTROYS EVERYTHING IN '$env_name'."
read -r -p "Type the environment name to confirm: " answer
if [[ "$answer" != "$env_name" ]]; then
  echo "Confirmation did not match '$env_name'; nothing destroyed." >&2
  exit 1
fi

terraform -chdir="$env_dir" apply -input=false "$plan_file"
