#!/bin/sh
# Fails unless TAG is "v" followed by the version in deno.json (the version --version prints).
#   check-tag.sh TAG [DENO_JSON]
set -eu
tag=$1
config=${2:-deno.json}
# deno.json is kept formatted by `deno fmt`, so its top-level version is on a line of its own.
version=$(sed -n 's/^  "version": *"\([^"]*\)".*/\1/p' "$config" | head -n 1)
if [ -z "$version" ]; then
  printf 'no "version" in %s\n' "$config" >&2
  exit 1
fi
if [ "$tag" != "v$version" ]; then
  printf 'tag %s does not match the version in %s: expected v%s\n' "$tag" "$config" "$version" >&2
  exit 1
fi
printf 'tag %s matches %s\n' "$tag" "$config"
