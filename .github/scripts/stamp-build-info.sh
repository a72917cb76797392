#!/bin/sh
# Writes the git commit into src/cli/build_info.json before `deno compile`, so the binary's --version
# names it. The committed file says "commit": null; run this only in a throw-away checkout (CI).
#   stamp-build-info.sh COMMIT [REPO_ROOT]
set -eu
commit=$1
root=${2:-.}
case $commit in
  *[!0-9a-f]* | "") printf 'not a commit hash: %s\n' "$commit" >&2 && exit 1 ;;
esac
printf '{ "commit": "%s" }\n' "$commit" > "$root/src/cli/build_info.json"
