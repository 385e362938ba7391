#!/usr/bin/env bash
# Install everything the tests need, then run the whole default suite.
#   bash scripts/test.sh [pytest args...]
# Slow soak/benchmark-sized tests are marked `slow` and excluded; run them with
#   .venv/bin/python -m pytest -m slow
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh --test
set +e
.venv/bin/python -m pytest -m "not slow" -p no:cacheprovider "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
    echo "pytest collected no tests: failing" >&2
    exit 1
fi
exit "$rc"
