#!/usr/bin/env bash
# Snapshot the repository for Ray's cluster launcher: build/courselab gets what git sees (tracked
# files with your uncommitted edits, untracked files that are not ignored) and the git history,
# nothing that .gitignore lists. cluster.yaml and cluster-onprem.yaml sync this directory to
# ~/courselab on every node; run this before each `ray up` so the nodes get your current code.
#
# Why not sync the repository root directly: `ray up` hashes every file under a file_mounts
# source, ignored ones included, before it applies rsync filters. Here that is a ~7 GB .venv and
# Ray's local temp dir (.ray/), whose leftover unix sockets make the hash fail with
# "OSError: [Errno 6] No such device or address".
set -euo pipefail

root=$(git rev-parse --show-toplevel)
dest="$root/build/courselab"

rm -rf "$dest"
mkdir -p "$(dirname "$dest")"
# The history (DVC needs a git repository; `dvc exp run` commits experiments), HEAD's branch.
git clone --quiet --no-checkout "$root" "$dest"
git -C "$dest" reset --quiet  # index = HEAD; the working-tree files follow
# The working tree as git sees it; tracked files deleted locally stay deleted.
cd "$root"
git ls-files -z --cached --others --exclude-standard |
  while IFS= read -r -d '' path; do
    if [[ -e $path || -L $path ]]; then printf '%s\0' "$path"; fi
  done |
  tar --null --no-recursion --files-from=- -cf - | tar -xf - -C "$dest"

changed=$(git -C "$dest" status --porcelain | wc -l)
echo "snapshot: $dest at $(git -C "$dest" rev-parse --short HEAD) with $changed uncommitted change(s)"
