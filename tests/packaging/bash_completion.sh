#!/usr/bin/env bash
# bash_completion.sh DIR: the completions in DIR (dist/bash-completion)
# complete each tool's options, the files --config takes, and wave-stat's
# socket argument with sockets only.
set -u
dir=$1
status=0
tmp=$(mktemp -d /tmp/wave-compl-XXXXXX) || exit 1
trap 'rm -rf "$tmp"' EXIT
# shellcheck source=/dev/null
source "$dir/wave-agentd" && source "$dir/wave-stat" || { echo "FAIL: cannot source"; exit 1; }

# complete FUNCTION WORD...: COMPREPLY for the last word, one per line.
complete_words() {
	local fn=$1
	shift
	COMP_WORDS=("$@")
	COMP_CWORD=$(($# - 1))
	COMPREPLY=()
	"$fn"
	printf '%s\n' "${COMPREPLY[@]}" | sort
}
expect() { # expect WHAT GOT WANT
	if [ "$2" = "$3" ]; then
		echo "ok: $1"
	else
		echo "FAIL: $1: got [$2], expected [$3]"
		status=1
	fi
}
expect "wave-agentd --c" "$(complete_words _wave_agentd wave-agentd --c)" "--check-config
--config"
touch "$tmp/agent.json" "$tmp/notes.txt"
expect "wave-agentd --config DIR/" "$(complete_words _wave_agentd wave-agentd --config "$tmp/")" \
	"$tmp/agent.json"
expect "wave-stat --p" "$(complete_words _wave_stat wave-stat --p)" "--pretty
--prometheus"
make_socket() { # a listening Unix socket file, made by perl (bash cannot bind)
	perl -MIO::Socket::UNIX -e 'IO::Socket::UNIX->new(Type => SOCK_STREAM(), Local => $ARGV[0], Listen => 1) or die' "$1"
}
if command -v perl >/dev/null 2>&1 && make_socket "$tmp/stats.sock" 2>/dev/null; then
	expect "wave-stat DIR/" "$(complete_words _wave_stat wave-stat "$tmp/")" "$tmp/stats.sock"
fi
exit $status
