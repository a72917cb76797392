#!/bin/sh
trap 'printf "%s\n" "install.sh: this script ends early (its download was cut short?); nothing installed" >&2; exit 1' EXIT
# Installs the orchesjob-flow binary for this host from a GitHub release, after checking it against the
# release's SHA256SUMS. POSIX sh; needs curl or wget, and sha256sum or shasum.
#
#   curl -fsSL https://github.com/rmuraki/orchesjob-flow/releases/latest/download/install.sh | sh
#   sh install.sh [--version vX.Y.Z] [--prefix DIR] [--base-url URL]
#
# For tests (and for trying another platform's choice), ORCHESJOB_FLOW_UNAME_S and ORCHESJOB_FLOW_UNAME_M
# replace the output of `uname -s` and `uname -m`, and ORCHESJOB_FLOW_LIBC (gnu or musl) replaces the
# C library detection. ORCHESJOB_FLOW_BASE_URL is the default of --base-url.
#
# `curl ... | sh` hands the script to sh as it arrives, and sh runs each command as soon as it has read
# it: a download cut short would run part of the script and exit 0. So every command is in a function,
# only the last line runs main, written so that no cut-short form of it runs anything, and the trap
# above (the script's first command) makes an exit before main has started fail with a message.
set -eu

program=orchesjob-flow

say() { printf '%s\n' "install.sh: $*" >&2; }
die() {
  say "$*"
  exit 1
}

usage() {
  cat <<EOF
Usage: install.sh [--version vX.Y.Z] [--prefix DIR] [--base-url URL]

Downloads ${program}-<os>-<arch> and SHA256SUMS from a release, verifies the checksum and installs the
binary as PREFIX/bin/${program} (default PREFIX: /usr/local). Nothing is installed when the checksum
does not match.

  --version vX.Y.Z   a release tag (default: the latest release)
  --prefix DIR       install into DIR/bin (default: /usr/local)
  --base-url URL     the releases URL (default: \$ORCHESJOB_FLOW_BASE_URL, else
                     https://github.com/rmuraki/orchesjob-flow/releases); assets are read from
                     URL/latest/download/ASSET or URL/download/vX.Y.Z/ASSET
EOF
}

parse_args() {
  while [ $# -gt 0 ]; do
    case $1 in
      --version | --prefix | --base-url)
        [ $# -ge 2 ] || die "$1 needs a value"
        case $1 in
          --version) version=$2 ;;
          --prefix) prefix=$2 ;;
          --base-url) base_url=$2 ;;
        esac
        shift 2
        ;;
      --version=*) version=${1#*=} && shift ;;
      --prefix=*) prefix=${1#*=} && shift ;;
      --base-url=*) base_url=${1#*=} && shift ;;
      -h | --help)
        usage
        exit 0
        ;;
      *) die "unknown argument '$1' (see --help)" ;;
    esac
  done
}

check_args() {
  # A tag is a path segment of the download URL: letters, digits, dots, hyphens and plus signs only, so
  # a '/' or '..' cannot point the download at another directory of the server.
  case $version in
    latest) ;;
    v[0-9]*[!A-Za-z0-9.+-]* | *..*) die "--version must look like v1.2.3, got '$version'" ;;
    v[0-9]*) ;;
    *) die "--version must look like v1.2.3, got '$version'" ;;
  esac
  case $base_url in
    file://*%00*) die "--base-url: a file:// URL cannot contain %00 (a NUL byte), got '$base_url'" ;;
    file:///* | file://localhost/*) ;;
    file://*) die "--base-url file:// needs an absolute path such as file:///srv/releases, got '$base_url'" ;;
    *://?*) ;;
    *) die "--base-url needs a URL such as https://example.com/releases, got '$base_url'" ;;
  esac
  [ -n "$prefix" ] || die "--prefix must not be empty"
  case $prefix in
    -*) die "--prefix needs a directory, got the option-like '$prefix' (write ./$prefix for a directory of that name)" ;;
    # No shell expands a ~ after "--prefix=" or in quotes: "~/.local" would be a directory named ~ under
    # the current one, reported as "installed ~/.local/bin/orchesjob-flow".
    "~"*) die "--prefix '$prefix' starts with a ~ that the shell did not expand (it does not after --prefix= or in quotes); write --prefix \"\$HOME/.local\"" ;;
  esac
}

# The C library of a Linux host: the release's Linux binaries link against glibc. ldd says which one
# the system uses; musl's loader being there proves nothing, as a glibc host may have musl installed
# beside it (Debian's musl package, for building static binaries), so it is asked only when ldd says
# neither.
libc() {
  if [ -n "${ORCHESJOB_FLOW_LIBC:-}" ]; then
    printf '%s\n' "$ORCHESJOB_FLOW_LIBC"
    return
  fi
  ldd_says=$(ldd --version 2>&1 || true)
  if printf '%s\n' "$ldd_says" | grep -qiE 'glibc|gnu libc'; then
    printf 'gnu\n'
  elif printf '%s\n' "$ldd_says" | grep -qi musl || ls /lib/ld-musl-* > /dev/null 2>&1; then
    printf 'musl\n'
  else
    printf 'gnu\n'
  fi
}

# Sets os_name, arch_name and asset for this host.
pick_asset() {
  os=${ORCHESJOB_FLOW_UNAME_S:-$(uname -s)}
  arch=${ORCHESJOB_FLOW_UNAME_M:-$(uname -m)}
  # A shell under Rosetta reports x86_64 on Apple silicon; the native binary is the better choice there.
  if [ -z "${ORCHESJOB_FLOW_UNAME_M:-}" ] && [ "$os" = Darwin ] && [ "$arch" = x86_64 ] &&
    [ "$(sysctl -n sysctl.proc_translated 2> /dev/null || true)" = 1 ]; then
    arch=arm64
  fi

  case $os in
    Linux) os_name=linux ;;
    Darwin) os_name=macos ;;
    *) die "unsupported system '$os': releases exist for Linux (glibc) and macOS only" ;;
  esac
  case $arch in
    x86_64 | amd64) arch_name=x64 ;;
    aarch64 | arm64) arch_name=arm64 ;;
    # armv8l: a 32-bit userland on a 64-bit ARM CPU (uname -m under linux32, or a 32-bit container).
    i?86 | x86 | armv[5-7]* | armv8l | armv8b | arm | armhf | mips | mipsel | ppc)
      die "unsupported machine '$arch': 32-bit systems are not supported (releases: x86_64 and arm64)"
      ;;
    *) die "unsupported machine '$arch': releases exist for x86_64 and arm64 only" ;;
  esac
  if [ "$os_name" = linux ] && [ "$(libc)" = musl ]; then
    die "unsupported C library: this looks like musl (e.g. Alpine); the Linux binaries need glibc"
  fi
  asset=$program-$os_name-$arch_name
}

# Sets src to the path of a file:// URL, percent-decoded: file:///srv/my%20dir is the directory
# "/srv/my dir", as curl and browsers read it. awk turns each %XX into an octal escape for printf %b
# (POSIX printf knows no \x) and doubles every backslash of the path itself, so none of those is read
# as an escape; a % not followed by two hex digits stays as written. %00 (a NUL byte) cannot be in a
# path.
file_url_path() {
  escaped=$(encoded=${1#file://} LC_ALL=C awk 'BEGIN {
    s = ENVIRON["encoded"]; hex = "0123456789abcdef"
    for (i = 1; i <= length(s); i++) {
      c = substr(s, i, 1); pair = tolower(substr(s, i + 1, 2))
      if (c == "%" && pair ~ /^[0-9a-f][0-9a-f]$/) {
        n = (index(hex, substr(pair, 1, 1)) - 1) * 16 + index(hex, substr(pair, 2, 1)) - 1
        if (n == 0) exit 1
        printf "\\0%03o", n; i += 2
      } else if (c == "\\") printf "\\\\"
      else printf "%s", c
    }
  }') || die "a file:// URL cannot contain %00, got '$1'"
  src=$(printf '%b' "$escaped")
  case $src in localhost/*) src=${src#localhost} ;; esac
}

fetch() {
  # A file:// URL (a release directory copied onto the host) is read here: wget knows no file://, so
  # a host with wget alone could not install from one, and neither tool is needed for it.
  case $1 in
    file://*)
      file_url_path "$1"
      cp -- "$src" "$2" 2> "$tmp/why"
      return
      ;;
  esac
  if command -v curl > /dev/null 2>&1; then
    curl -fsSL -o "$2" "$1" 2> "$tmp/why"
  elif command -v wget > /dev/null 2>&1; then
    # GNU wget retries a download cut short 20 times, waiting up to 10 s between tries and silent under
    # -q: minutes of nothing, then the same failure. One try, as curl makes; rerunning the script is
    # safe. Not -q: its last line says why a download failed ("Connection closed at byte N", "ERROR
    # 404"), which -q and -nv leave out. (busybox wget makes one try, knows no --tries, and its -q keeps
    # the errors.)
    if wget --version 2> /dev/null | grep -q 'GNU Wget'; then
      wget --progress=dot:mega --tries=1 -O "$2" "$1" 2> "$tmp/why"
    else
      wget -q -O "$2" "$1" 2> "$tmp/why"
    fi
  else
    die "neither curl nor wget is installed"
  fi
}

sha256() {
  if command -v sha256sum > /dev/null 2>&1; then
    sha256sum "$1" | cut -d' ' -f1
  elif command -v shasum > /dev/null 2>&1; then
    shasum -a 256 "$1" | cut -d' ' -f1
  else
    die "neither sha256sum nor shasum is installed: cannot verify the download"
  fi
}

# A failed command's own reason (the last line it wrote to $tmp/why, or to the file given), so that each
# failure is told on one line, ours, instead of the tool's line followed by ours.
why() {
  reason=$(grep . "${1:-$tmp/why}" 2> /dev/null | tail -n 1 || true)
  printf '%s' "${reason:-no reason given}"
}

# On every exit: the downloads go, and so does a new binary not yet renamed into place (an interrupt
# between writing it and renaming it would otherwise leave a hidden copy in PREFIX/bin each time).
clean_up() {
  rm -rf "$tmp"
  if [ -n "$new" ]; then rm -f "$new"; fi
}

# Sets tmp, downloads the asset and SHA256SUMS into it, and checks the one against the other.
download_and_verify() {
  tmp=$(mktemp -d "${TMPDIR:-/tmp}/$program-install.XXXXXX" 2> /dev/null) ||
    die "cannot create a temporary directory in ${TMPDIR:-/tmp} (set TMPDIR to a writable directory); nothing installed"
  trap clean_up EXIT
  trap 'exit 1' HUP INT TERM

  say "downloading $asset ($version) from $url"
  fetch "$url/$asset" "$tmp/$asset" || die "download of $url/$asset failed ($(why)); nothing installed"
  fetch "$url/SHA256SUMS" "$tmp/SHA256SUMS" || die "download of $url/SHA256SUMS failed ($(why)); nothing installed"

  # SHA256SUMS lines: "<hex>  <name>" (a "*" before the name marks binary mode).
  expected=$(awk -v name="$asset" '$2 == name || $2 == "*" name { print $1; exit }' "$tmp/SHA256SUMS")
  [ -n "$expected" ] || die "SHA256SUMS has no line for $asset; nothing installed"
  actual=$(sha256 "$tmp/$asset")
  if [ "$actual" != "$expected" ]; then
    die "checksum mismatch for $asset (expected $expected, got $actual); nothing installed"
  fi
}

# Sets bindir and target, and refuses a PREFIX/bin that cannot take the binary before anything is
# downloaded (minutes, over some edge links). The nearest directory on the way that exists (PREFIX/bin
# itself, or the one mkdir -p would start in) must be writable and searchable: test -w asks access(2),
# which says no on a read-only file system even to root. Nothing is created here, so that a failed
# download or checksum leaves no trace; put_in_place still reports what this cannot foresee.
check_target() {
  bindir=$prefix/bin
  target=$bindir/$program
  # A directory there would take the binary inside it (mv into a directory) instead of being replaced.
  [ ! -d "$target" ] || die "$target is a directory; remove it first. Nothing installed"
  dir=$bindir
  while [ ! -e "$dir" ] && [ "$(dirname -- "$dir")" != "$dir" ]; do dir=$(dirname -- "$dir"); done
  [ -d "$dir" ] || die "cannot create $bindir ($dir is not a directory); nothing installed"
  if [ ! -w "$dir" ] || [ ! -x "$dir" ]; then
    die "cannot write to $dir (no permission, or a read-only file system); nothing installed (as a user who may not write there, use --prefix \$HOME/.local)"
  fi
}

# Puts the verified asset in place as PREFIX/bin/orchesjob-flow.
put_in_place() {
  mkdir -p "$bindir" 2> "$tmp/why" || die "cannot create $bindir ($(why)); nothing installed (as a user who may not write there, use --prefix \$HOME/.local)"
  # Install under a temporary name in the same directory, then rename over the old binary: a running
  # driver keeps its (old) file, and no reader ever sees half a binary. The new binary must run here
  # before it replaces anything (a wrong asset on a mirror, a glibc too old): a binary that does not
  # would break every cron line and timer that calls it, where the old one worked.
  new=$bindir/.$program.new.$$
  # cp and chmod, not install(1): busybox builds without its install applet (Debian's, for one) are
  # what some edge hosts have.
  if ! cp "$tmp/$asset" "$new" 2> "$tmp/why" || ! chmod 0755 "$new" 2> "$tmp/why"; then
    rm -f "$new"
    die "cannot write to $bindir ($(why)); nothing installed (as a user who may not write there, use --prefix \$HOME/.local)"
  fi
  if ! "$new" --version > "$tmp/version" 2>&1; then
    rm -f "$new"
    die "the downloaded $asset does not run on this host ($(why "$tmp/version")); nothing installed"
  fi
  mv -f "$new" "$target" 2> "$tmp/why" || {
    rm -f "$new"
    die "cannot replace $target ($(why)); the old one is kept"
  }
  new=
  say "installed $target"
  cat "$tmp/version"
}

main() {
  # The whole script has been read: from here on, an exit is the script's own.
  trap - EXIT
  new=
  base_url=${ORCHESJOB_FLOW_BASE_URL:-https://github.com/rmuraki/orchesjob-flow/releases}
  version=latest
  prefix=/usr/local
  parse_args "$@"
  check_args
  pick_asset
  if [ "$version" = latest ]; then
    url=$base_url/latest/download
  else
    url=$base_url/download/$version
  fi
  check_target
  download_and_verify
  put_in_place
}

{ main "$@"; }
