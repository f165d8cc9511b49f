#!/usr/bin/env bash
# Make a kit for a classroom with no internet: a clean clone of the course,
# every crate it needs (cargo vendor), a debug build of the workspace and its
# tests, and the root filesystem the chapters use from chapter 4 on.
#
#   classroom/prepare-offline.sh [REPO] [KIT.tar.zst]
#
# as root, or as a user who owns an empty KIT_DIR
# (`sudo install -d -o "$USER" /opt/workshop`: sudo's PATH may lack cargo).
#
# REPO: a git URL or path (default: the repository this script is in; only
# what is committed goes into the kit). Run it on a Linux machine with the
# network, the same Rust toolchain the students have (the build in target/ is
# only reused by the same rustc: with another one cargo rebuilds from the
# vendored sources, offline still), and the packages the README lists (a
# static busybox for the rootfs).
#
# The kit is built in, and unpacks to, KIT_DIR (default /opt/workshop):
#   /opt/workshop/.cargo/config.toml      crates-io replaced by vendor/, net.offline
#   /opt/workshop/vendor/                 the crates (cargo vendor)
#   /opt/workshop/container-workshop/     the clone, its target/ built, target/rootfs made
# Students unpack it with `sudo tar -C / --zstd -xf KIT.tar.zst` and make it
# theirs with `sudo chown -R "$USER": /opt/workshop`.
# One fixed path, because cargo remembers the absolute path of every
# crate's source outside the workspace: unpacked anywhere else, the kit still
# works offline, but cargo rebuilds every crate first (PathToSourceChanged).
# The clone's own files are untouched: cargo also reads the config of the
# directories above the one it runs in, which is where the vendor lines go.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=${1:-$(git -C "$here" rev-parse --show-toplevel)}
kit=${2:-$PWD/workshop-kit.tar.zst}
case $kit in /*) ;; *) kit=$PWD/$kit ;; esac
top=${KIT_DIR:-/opt/workshop}
case $top in /*) ;; *) echo "error: KIT_DIR must be an absolute path: $top" >&2; exit 2 ;; esac
if [ -e "$top" ] && [ -n "$(ls -A "$top")" ]; then
  echo "error: $top is not empty; move it away or set KIT_DIR" >&2
  exit 1
fi
mkdir -p "$top/.cargo"
# Built here only to be packed: removed on every exit (KEEP=1 keeps it).
[ "${KEEP:-0}" = 1 ] || trap 'rm -rf "$top"' EXIT
step() { echo "== $* ($SECONDS s)" >&2; }

step "clone $repo"
git clone --quiet "$repo" "$top/container-workshop"
cd "$top/container-workshop"
unset CARGO_TARGET_DIR # the build must land in the clone's own target/

step "cargo vendor"
# cargo vendor prints (on stdout; not with --quiet) the lines that point cargo
# at the vendored crates; its path is relative to the clone, and the config
# sits one level up, so it is rewritten relative to $top.
cargo vendor --locked ../vendor > "$top/vendor-config.toml" 2> "$top/vendor.log" ||
  { cat "$top/vendor.log" >&2; exit 1; }
sed 's|directory = "../vendor"|directory = "vendor"|' "$top/vendor-config.toml" > "$top/.cargo/config.toml"
rm "$top/vendor-config.toml" "$top/vendor.log"
cat >> "$top/.cargo/config.toml" <<'EOF'

# The classroom has no network: cargo must not even try.
[net]
offline = true
EOF
grep -q 'directory = "vendor"' "$top/.cargo/config.toml" ||
  { echo "error: cargo vendor printed no directory line" >&2; exit 1; }

step "build the workspace, its tests and xtask (offline, from vendor/)"
cargo build --workspace --locked --offline
cargo test --workspace --no-run --locked --offline
# Students build one package at a time (cargo run -p ch05-uts, cargo test -p
# exercises ch05), and a package alone may unify its crates' features
# differently from the whole workspace: build each as they will, or their
# first `cargo test -p` compiles again.
for p in $(cargo metadata --no-deps --format-version 1 --offline |
  python3 -c 'import json,sys; print(" ".join(p["name"] for p in json.load(sys.stdin)["packages"]))'); do
  cargo build -p "$p" --locked --offline --quiet
  cargo test -p "$p" --no-run --locked --offline --quiet
done

step "the root filesystem (target/rootfs)"
cargo xtask rootfs

step "pack"
rustc -V > "$top/RUSTC-VERSION"
git rev-parse HEAD > "$top/COMMIT"
tar -C / --zstd -cf "$kit" "${top#/}"
du -sh "$top/vendor" "$top/container-workshop/target" "$kit" >&2
step "done: $kit (unpack with: sudo tar -C / --zstd -xf $kit)"
