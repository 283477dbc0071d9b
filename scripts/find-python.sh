#!/usr/bin/env bash
# Print a Python 3.12 (else 3.13, else 3.11) on this machine, for creating .venv.
set -euo pipefail
for candidate in python3.12 python3.13 python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1 \
        && "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
        command -v "$candidate"
        exit 0
    fi
done
echo "No Python 3.11 or newer found: install python3.12 (e.g. apt-get install python3.12-venv)" >&2
exit 1
