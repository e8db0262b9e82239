#!/bin/bash
# Mutation score of one Iris module, in a throwaway copy of a tree (never in the repository).
# Run from anywhere, with mutmut on PATH: pip install mutmut==3.8.1 (in the project's venv).
#
#   measure.sh TREE MODULE                 every mutant, in a fresh copy of TREE
#   measure.sh TREE MODULE --survivors     again, only the mutants the last run did not kill,
#                                          with TREE's tests/ copied in first (new tests are
#                                          traced by mutmut before they run); the killed stay killed
#   measure.sh TREE MODULE MUTANT_NAME...  only these, in the copy as it is
#
# TREE: a checkout of iris (its tracked and untracked, not ignored, files are copied).
# MODULE: credentials | admission | gcra | buckets | guarded | breaker | pool | flight
# The copy is $MUTATION_DIR/MODULE (default /tmp/iris-mutation/MODULE, made afresh each time); mutmut
# runs every mutant of the one module against the tests (of the files listed below) that call
# the mutated function, with pytest -x, two at a time, at nice 10. Timeouts are generous
# (30 s plus ten times the tests' own duration) and are counted apart from kills.
set -euo pipefail
HERE=$(dirname "$(realpath "$0")")
WORK=${MUTATION_DIR:-${TMPDIR:-/tmp}/iris-mutation}
TREE=$(realpath "$1")
MODULE=$2
shift 2

case $MODULE in
  credentials) FILE=proxy/security/credentials.py
    TESTS="test_credentials test_admission test_security test_signed_urls test_guessing test_admin test_config" ;;
  admission) FILE=proxy/security/admission.py
    TESTS="test_admission test_credentials test_security test_signed_urls test_guessing test_autoblock test_fast_lane test_admin test_generation_limits" ;;
  gcra) FILE=proxy/security/limits.py
    TESTS="test_gcra test_rate_buckets test_security" ;;
  buckets) FILE=proxy/security/limits_sqlite.py
    TESTS="test_rate_buckets test_gcra test_security" ;;
  guarded) FILE=proxy/upstream/guarded.py
    TESTS="test_answer_urls test_hosting test_image_route" ;;
  breaker) FILE=proxy/upstream/breaker.py
    TESTS="test_pool test_metrics test_litellm test_redis_parts test_vision_cascade" ;;
  pool) FILE=proxy/upstream/pool.py
    TESTS="test_pool test_litellm test_pipeline test_vision_cascade" ;;
  flight-unit) FILE=proxy/cache/flight.py
    TESTS="test_flight" ;;
  flight) FILE=proxy/cache/flight.py
    TESTS="test_flight test_cache test_redis_cache" ;;
  *) echo "unknown module $MODULE" >&2; exit 2 ;;
esac

RUN=$WORK/$MODULE
if [ "${1:-}" = "--survivors" ]; then
  rm -rf "$RUN/tests"
  (cd "$TREE" && git ls-files -co --exclude-standard -z tests | tar --null -T - -cf -) | tar -xf - -C "$RUN"
  set -- $(awk -F': ' '$2 != "killed" && NF == 2 {gsub(/^ +/, "", $1); print $1}' "$RUN/results.txt")
  [ $# -gt 0 ] || { echo "$MODULE: nothing survived"; exit 0; }
fi
if [ $# -eq 0 ]; then
  rm -rf "$RUN"
  mkdir -p "$RUN"
  (cd "$TREE" && git ls-files -co --exclude-standard -z | tar --null --ignore-failed-read -T - -cf -) | tar -xf - -C "$RUN"
  SELECTION=$(for t in $TESTS; do printf '"tests/%s.py", ' "$t"; done)
  cat >> "$RUN/pyproject.toml" <<EOF

[tool.mutmut]
source_paths = ["proxy"]
only_mutate = ["$FILE"]
pytest_add_cli_args_test_selection = [${SELECTION%, }]
pytest_add_cli_args = ["-p", "no:cacheprovider"]
also_copy = ["templates", "prompt-template.txt", "safe-prompt-template.txt", ".env.example", "README.md", "deploy"]
timeout_multiplier = 10.0
timeout_constant = 30.0
use_git_change_detection = false
EOF
fi
cd "$RUN"
command -v mutmut >/dev/null || { echo "mutmut is not on PATH: pip install mutmut==3.8.1" >&2; exit 2; }
nice -n 10 mutmut run --max-children 2 "$@" > run.log 2>&1 || { tail -40 run.log; exit 1; }
mutmut results --all true > results.txt
python3 "$HERE/summarise.py" "$MODULE" results.txt
