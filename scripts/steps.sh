# shellcheck shell=bash
# Sourced by scripts/bootstrap and scripts/test (not a command): quiet set-up steps.
#
#   step MESSAGE COMMAND [ARGS...]
#
# prints one line, "scripts/NAME: MESSAGE ...", and runs COMMAND with its output (stdout and
# stderr) captured in a temporary file. If COMMAND succeeds the output is dropped; if it fails the
# whole output is printed, then a line saying which step failed, and the script exits with
# COMMAND's status. COMMAND runs with `set -e` off (bash turns it off inside a tested command):
# a function given as COMMAND must chain its commands with && so that it fails when one fails.

_step_script="scripts/$(basename "$0")"
_step_log=""
trap '[ -z "$_step_log" ] || rm -f "$_step_log"' EXIT

step() {
    local message=$1 status=0
    shift
    echo "$_step_script: $message ..." >&2
    _step_log=$(mktemp "${TMPDIR:-/tmp}/watchreload-step.XXXXXX")
    "$@" >"$_step_log" 2>&1 </dev/null || status=$?
    if [ "$status" -ne 0 ]; then
        cat "$_step_log" >&2
        echo "$_step_script: failed (exit status $status): $message; its whole output is above" >&2
    fi
    rm -f "$_step_log"
    _step_log=""
    [ "$status" -eq 0 ] || exit "$status"
}

# apt_install WHAT PACKAGE...: install Debian/Ubuntu packages (with sudo unless we are root) as
# one step, "installing WHAT with apt-get". Exits with a hint where there is no apt-get.
apt_install() {
    local what=$1
    shift
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "$_step_script: please install: $* (no apt-get on this machine)" >&2
        exit 1
    fi
    step "installing $what with apt-get" _apt_get_install "$@"
}

_apt_get_install() {
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update &&
        $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y "$@"
}
