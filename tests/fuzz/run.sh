#!/usr/bin/env bash
# tests/fuzz/run.sh SECONDS NAME... — runs each libFuzzer harness
# build/fuzz/fuzz_NAME, one at a time: first every input of
# tests/fuzz/regressions/NAME/ (crashes found before: each must pass), then
# SECONDS of fuzzing from the seeds in tests/fuzz/corpus/NAME/ (new inputs
# go to build/fuzz/corpus/NAME/, never into the committed seeds).
# Ends with one line per harness: executions, crashes, coverage. Exit
# status 1 if any harness crashed, hung or failed a regression.
#
# A crash leaves its input in build/fuzz/artifacts/NAME/: add it to
# tests/fuzz/regressions/NAME/ with the fix.
set -uo pipefail
secs=$1
shift
cd "$(dirname "$0")/../.."
status=0
summary=()
for name in "$@"; do
	bin=build/fuzz/fuzz_$name
	work=build/fuzz/corpus/$name
	art=build/fuzz/artifacts/$name/
	log=build/fuzz/$name.log
	mkdir -p "$work" "$art" "tests/fuzz/corpus/$name"
	regs=(tests/fuzz/regressions/"$name"/*)
	if [ -e "${regs[0]}" ]; then
		if ! "$bin" "${regs[@]}" >"build/fuzz/$name.regressions.log" 2>&1; then
			echo "fuzz $name: a regression input fails again:" >&2
			tail -n 30 "build/fuzz/$name.regressions.log" >&2
			summary+=("fuzz $name: regression FAILED (${#regs[@]} inputs)")
			status=1
			continue
		fi
	fi
	"$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
		-print_final_stats=1 -artifact_prefix="$art" \
		"$work" "tests/fuzz/corpus/$name" >"$log" 2>&1
	rc=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
	last=$(grep -E '^#[0-9]+' "$log" | tail -n 1)
	cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
	ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
	crashes=$(find "$art" -type f \( -name 'crash-*' -o -name 'timeout-*' \
		-o -name 'oom-*' -o -name 'leak-*' \) -newer "$bin" | wc -l)
	if [ "$rc" -ne 0 ]; then
		status=1
		[ "$crashes" -gt 0 ] || crashes=1
		echo "fuzz $name: libFuzzer exited $rc:" >&2
		grep -E 'ERROR|SUMMARY|runtime error|Test unit written' "$log" | head -n 20 >&2
	fi
	regn=0
	[ -e "${regs[0]}" ] && regn=${#regs[@]}
	summary+=("fuzz $name: ${execs:-0} executions, $crashes crashes (cov ${cov:-?}, ft ${ft:-?}, $secs s, $regn regression inputs replayed)")
done
printf '%s\n' "${summary[@]}"
exit "$status"
