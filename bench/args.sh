# bench/args.sh — the command line every benchmark script takes. Sourced first, with the script's
# arguments: `source "$(dirname "${BASH_SOURCE[0]}")/args.sh" "$@"`.
# --quick sets QUICK=1; --help prints the script's header comment (every `#` line after the shebang,
# up to the first other line); anything else is refused. `q FULL QUICK` picks a default by QUICK.
QUICK=0
for arg in "$@"; do
    case "$arg" in
        --quick) QUICK=1 ;;
        -h|--help) awk 'NR == 1 { next } /^#/ { sub(/^# ?/, ""); print; next } { exit }' "$0"; exit 0 ;;
        *) echo "unknown argument: $arg (try --help)" >&2; exit 2 ;;
    esac
done
q() { [[ $QUICK == 1 ]] && echo "$2" || echo "$1"; } # full-run default, --quick default
