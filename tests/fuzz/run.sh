#!/usr/bin/env bash
# Runs every fuzz target for a bounded time, each seeded from tests/fixtures (and the shipped
# plugins, templates and config for the config and template targets).
#
#   tests/fuzz/run.sh [seconds per target, default 60] [target …]
#
# cargo-fuzz needs nightly features (sanitizers, -Z flags); RUSTC_BOOTSTRAP=1 lets the stable
# toolchain, the only one on these machines, accept them. Crashes land in
# tests/fuzz/artifacts/<target>/; reproduce one with
#   RUSTC_BOOTSTRAP=1 cargo fuzz run --fuzz-dir tests/fuzz <target> <artifact>
#
# FUZZ_QUICK=1 (.ci/run's short run) builds with the dev profile and without AddressSanitizer:
# less than half the build time of the default optimised ASan build (5 against 11+ minutes on
# two cores), and every panic — what safe Rust crashes with — is still caught. What that profile
# optimises is in tests/fuzz/Cargo.toml; generics are not shared between crates there, or the
# code under test would run the unoptimised copies its dependencies made of them.
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds="${1:-60}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(vendor_jivo vendor_envybox vendor_callkeeper body_detect condition config_load template_render)
fi
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
export RUSTC_BOOTSTRAP=1
build=()
if [ "${FUZZ_QUICK:-}" = 1 ]; then
  build=(--dev -s none)
  export RUSTFLAGS="${RUSTFLAGS:-} -Zshare-generics=n"
fi

# Vendor payloads: every fixture but the golden events.
payloads() { find "tests/fixtures/$1" -type f ! -name '*.event.json' | sort; }

seed() {
  local target="$1" dir="tests/fuzz/corpus/$1"
  mkdir -p "$dir"
  case "$target" in
    vendor_jivo)       for f in $(payloads jivo); do printf '\0' | cat - "$f" > "$dir/$(basename "$f")"; done ;;
    vendor_envybox)    for f in $(payloads envybox); do printf '\1' | cat - "$f" > "$dir/$(basename "$f")"; done ;;
    vendor_callkeeper) for f in $(payloads callkeeper); do
                         printf '\3' | cat - "$f" > "$dir/$(basename "$f")"; done ;;
    body_detect)       for f in tests/fixtures/*/*.form; do printf 'application/x-www-form-urlencoded\n' | cat - "$f" > "$dir/$(basename "$f")"; done
                       for f in $(payloads jivo); do printf 'application/json\n' | cat - "$f" > "$dir/$(basename "$f")"; done ;;
    condition)         grep -h '^when = ' plugins/*.toml config.toml | sed 's/^/    /;s/^ *//' | split -l 1 - "$dir/when-" ;;
    config_load)       cp config.toml "$dir/shipped.toml" ;;
    template_render)   for f in templates/*/*.hbs; do cp "$f" "$dir/$(basename "$(dirname "$f")")-$(basename "$f")"; done ;;
  esac
}

status=0
for target in "${targets[@]}"; do
  seed "$target"
  echo "--- fuzz $target for ${seconds}s"
  log="tests/fuzz/corpus/$target.log"
  if cargo fuzz run "${build[@]}" --fuzz-dir tests/fuzz "$target" "tests/fuzz/corpus/$target" -- \
      -max_total_time="$seconds" -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1; then
    tail -n 6 "$log"
  else
    # A crash: the panic message sits above a long backtrace and libFuzzer's report.
    grep -E -A 3 "panicked at|ERROR: |SUMMARY" "$log" | head -n 40 || true
    tail -n 40 "$log"
    status=1
  fi
done
exit $status
