#!/usr/bin/env bash
# tests/readme_examples.sh CASKD [README] — runs the examples of README.md's
# "Use it" section (up to its first subsection), in order, against a fresh caskd, and checks that each
# prints what the README says it prints. `make readme` (and `make test`)
# run it.
#
# The section's indented lines are read as a shell session: a line ending
# in | or \ continues on the next; a line "# ..." is a comment; a line
# "#=> TEXT" says the command before it prints TEXT (on stdout or stderr),
# and "#=> exit N" that it exits with N (otherwise it must exit 0).
# localhost:7070 becomes the fresh daemon's address, and CASKD_URL points
# the caskd client there; the commands run in a scratch directory, with
# the directory of CASKD first on PATH.
#
# Exit status 0 when every example holds; 1 with each one that does not.
set -uo pipefail

[ $# -ge 1 ] || { echo "usage: $0 CASKD [README]" >&2; exit 2; }
bin=$(realpath "$1")
root=$(cd "$(dirname "$0")/.." && pwd)
readme=$(realpath "${2:-$root/README.md}")
work=$(mktemp -d /tmp/caskd-readme-XXXXXX)
pid=

cleanup() {
	if [ -n "$pid" ]; then
		kill -TERM "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	fi
	rm -rf "$work"
}
trap cleanup EXIT

"$bin" --listen 127.0.0.1:0 --workers 2 --data-dir "$work/data" >"$work/caskd.log" 2>&1 &
pid=$!
port=
for _ in $(seq 100); do
	port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9][0-9]*\).*/\1/p' "$work/caskd.log" | head -n 1)
	[ -n "$port" ] && curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break
	kill -0 "$pid" 2>/dev/null || break
	sleep 0.1
done
if [ -z "$port" ] || ! curl -sf "http://127.0.0.1:$port/healthz" >/dev/null; then
	echo "readme: caskd did not start:" >&2
	tail -n 20 "$work/caskd.log" >&2
	exit 1
fi
export CASKD_URL=http://127.0.0.1:$port
export PATH=$(dirname "$bin"):$PATH

failed=0
ran=0
cmd=
want=()

# Runs $cmd and checks the expectations gathered for it.
check() {
	local out rc exit_want=0 w
	[ -n "$cmd" ] || return 0
	out=$(cd "$work" && bash -c "${cmd//localhost:7070/127.0.0.1:$port}" 2>&1 </dev/null)
	rc=$?
	out=${out//$'\r'/}
	ran=$((ran + 1))
	for w in "${want[@]}"; do
		if [[ $w =~ ^exit\ ([0-9]+)$ ]]; then
			exit_want=${BASH_REMATCH[1]}
		elif [[ $out != *"$w"* ]]; then
			printf 'readme: %s\n  should print: %s\n  printed:\n%s\n' "$cmd" "$w" \
				"$(sed 's/^/    /' <<<"$out")" >&2
			failed=$((failed + 1))
		fi
	done
	if [ "$rc" -ne "$exit_want" ]; then
		printf 'readme: %s\n  exit %d, want %d; printed:\n%s\n' "$cmd" "$rc" "$exit_want" \
			"$(sed 's/^/    /' <<<"$out")" >&2
		failed=$((failed + 1))
	fi
	cmd=
	want=()
}

section=$(awk '/^## Use it/ { on = 1; next } /^#+ / { on = 0 } on' "$readme" |
	  sed -n 's/^    //p')
[ -n "$section" ] || { echo "readme: no examples under '## Use it' in $readme" >&2; exit 1; }
continued=0
while IFS= read -r line; do
	if [ "$continued" = 1 ]; then
		cmd+=$'\n'$line
	elif [[ $line == '#=> '* ]]; then
		want+=("${line#'#=> '}")
		continue
	elif [[ $line == '#'* || -z ${line// /} ]]; then
		continue
	else
		check
		cmd=$line
	fi
	[[ $line == *'|' || $line == *'\' ]] && continued=1 || continued=0
done <<<"$section"
check

if [ "$failed" -ne 0 ]; then
	echo "readme: $failed of the expectations of $ran examples do not hold" >&2
	exit 1
fi
echo "readme: $ran examples of README.md hold"
