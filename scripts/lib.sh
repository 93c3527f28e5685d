# Shared by ./run-tests and ./run-example: install what is missing, build.
# shellcheck shell=bash

SLUICE_PACKAGES="meson ninja-build pkg-config gcc cmake libevent-dev libnng-dev liblmdb-dev
lmdb-utils libyaml-dev libcriterion-dev libjansson-dev libssl-dev libsqlite3-dev sqlite3
python3 curl awscli python3-boto3 clang clang-format libclang-rt-14-dev git"

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# Installs the Debian packages that are not installed yet (apt-get, as root or with sudo).
install_missing() {
	local missing=() p
	for p in $SLUICE_PACKAGES; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
			missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	say "installing: ${missing[*]}"
	local sudo=""
	[ "$(id -u)" -ne 0 ] && sudo="sudo"
	$sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
	$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
		"${missing[@]}" >/dev/null
}

# build DIR [meson options...]: configure once, then compile.
build() {
	local dir=$1
	shift
	if [ ! -f "$dir/build.ninja" ]; then
		meson setup "$dir" "$@" >"$dir.setup.log" 2>&1 || {
			cat "$dir.setup.log" >&2
			return 1
		}
	fi
	ninja -C "$dir" >&2
}
