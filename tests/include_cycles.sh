#!/bin/sh
# tests/include_cycles.sh DIR... — fails if the modules of a directory
# include each other in a circle. A module is a name's .c and .h
# (server/api_kv.c and server/api_kv.h are one); a module depends on
# another when either of its files includes the other's header. tsort
# finds the circle and names its members.
set -eu
status=0
for dir in "$@"; do
	pairs=$(for f in "$dir"/*.c "$dir"/*.h; do
		[ -e "$f" ] || continue
		m=$(basename "$f"); m=${m%.*}
		sed -n "s|^#include \"$dir/\(.*\)\.h\".*|\1|p" "$f" | while read -r d; do
			[ "$d" = "$m" ] || echo "$m $d"
		done
	done)
	if ! out=$(printf '%s\n' "$pairs" | tsort 2>&1 >/dev/null) || [ -n "$out" ]; then
		echo "include cycle in $dir/:"
		printf '%s\n' "$out" | sed 's/^/  /'
		status=1
	fi
done
exit $status
