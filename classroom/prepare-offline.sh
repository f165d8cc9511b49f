#!/usr/bin/env bash
# Make a kit for a classroom with no internet: a clean clone of the course,
# every crate it needs (cargo vendor), a debug build of the workspace and its
# tests, and the root filesystem the chapters use from chapter 4 on.
#
#   classroom/prepare-offline.sh [REPO] [KIT.tar.zst]
#
# REPO: a git URL or path (default: the repository this script is in; only
# what is committed goes into the kit). Run it on a Linux machine with the
# network, the same Rust toolchain the students have (the build in target/ is
# only reused by the same rustc: with another one cargo rebuilds from the
# vendored sources, offline still), and the packages the README lists (a
# static busybox for the rootfs).
#
# The kit unpacks into one directory:
#   workshop/.cargo/config.toml      crates-io replaced by workshop/vendor, net.offline
#   workshop/vendor/                 the crates (cargo vendor)
#   workshop/container-workshop/     the clone, its target/ built, target/rootfs made
# The clone's own files are untouched: cargo also reads the config of the
# directories above the one it runs in, which is where the vendor lines go.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=${1:-$(git -C "$here" rev-parse --show-toplevel)}
kit=${2:-$PWD/workshop-kit.tar.zst}
case $kit in /*) ;; *) kit=$PWD/$kit ;; esac

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
top=$work/workshop
mkdir -p "$top/.cargo"
step() { echo "== $* ($SECONDS s)" >&2; }

step "clone $repo"
git clone --quiet "$repo" "$top/container-workshop"
cd "$top/container-workshop"
unset CARGO_TARGET_DIR # the build must land in the clone's own target/

step "cargo vendor"
# cargo vendor prints the lines that point cargo at the vendored crates; its
# path is relative to the clone, and the config sits one level up, so it is
# rewritten relative to workshop/.
cargo vendor --locked --quiet ../vendor > "$work/vendor-config.toml"
sed 's|directory = "../vendor"|directory = "vendor"|' "$work/vendor-config.toml" > "$top/.cargo/config.toml"
cat >> "$top/.cargo/config.toml" <<'EOF'

# The classroom has no network: cargo must not even try.
[net]
offline = true
EOF
grep -q 'directory = "vendor"' "$top/.cargo/config.toml" ||
  { echo "error: cargo vendor printed no directory line: $work/vendor-config.toml" >&2; exit 1; }

step "build the workspace, its tests and xtask (offline, from vendor/)"
cargo build --workspace --locked --offline
cargo test --workspace --no-run --locked --offline

step "the root filesystem (target/rootfs)"
cargo xtask rootfs

step "pack"
rustc -V > "$top/RUSTC-VERSION"
git rev-parse HEAD > "$top/COMMIT"
tar -C "$work" --zstd -cf "$kit" workshop
du -sh "$top/vendor" "$top/container-workshop/target" "$kit" >&2
step "done: $kit"
