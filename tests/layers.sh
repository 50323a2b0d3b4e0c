#!/bin/sh
# tests/layers.sh DIR... — fails on a circle of files: a module is x.c
# with x.h (x_int.h counts as x), and module a depends on module b when
# a.c or a.h includes b.h. Any cycle among the modules of DIR... (two
# files importing each other, or a longer ring) fails, and tsort names
# the modules in it. `make layers` runs it; see LAYERS_CYCLE_DIRS there.
set -eu
edges=$(mktemp)
trap 'rm -f "$edges"' EXIT
for dir in "$@"; do
	for f in "$dir"/*.c "$dir"/*.h; do
		[ -e "$f" ] || continue
		from=$(echo "$f" | sed -E 's/(_int)?\.[ch]$//')
		echo "$from $from" >> "$edges" # every module, even a lone one
		sed -nE 's/^[[:space:]]*#[[:space:]]*include[[:space:]]+"([^"]+)".*/\1/p' "$f" |
		while read -r inc; do
			to=$(echo "$inc" | sed -E 's/(_int)?\.[ch]$//')
			case " $* " in *" ${to%/*} "*) ;; *) continue ;; esac
			[ "$to" = "$from" ] || echo "$from $to"
		done >> "$edges"
	done
done
if ! out=$(tsort "$edges" 2>&1 >/dev/null) || [ -n "$out" ]; then
	echo "layers: a circle of includes among $*:"
	echo "$out" | sed -n 's/^tsort: //p' | grep -v 'input contains a loop' | awk '!seen[$0]++'
	exit 1
fi
