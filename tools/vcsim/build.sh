#!/bin/sh
# Build vcsim, our vCenter simulator, from Debian's govmomi source plus our
# patches (tools/vcsim/patches/*.patch) into .build/vcsim/vcsim.
#
# Debian ships govmomi as source only (golang-github-vmware-govmomi-dev); we
# copy it into an overlay GOPATH, patch the copy (never the system files) and
# build with GOPATH=<overlay>:/usr/share/gocode so the other dependencies
# (google/uuid, ...) still come from Debian. Offline: GO111MODULE=off.
#
# Incremental: nothing is done when the binary is newer than main.go, every
# patch and this script. Set VCSIM_FORCE_BUILD=1 to rebuild anyway.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
out="$repo/.build/vcsim"
bin="$out/vcsim"
src=/usr/share/gocode/src/github.com/vmware/govmomi
overlay="$out/gopath"
dst="$overlay/src/github.com/vmware/govmomi"

die() { echo "build.sh: $*" >&2; exit 1; }

command -v go >/dev/null 2>&1 ||
    die "the Go compiler is missing: apt-get install golang-go"
[ -d "$src/simulator" ] ||
    die "govmomi source is missing ($src): apt-get install golang-github-vmware-govmomi-dev"
command -v patch >/dev/null 2>&1 || die "patch(1) is missing: apt-get install patch"

mkdir -p "$out"
# Several engineers and test sessions share this checkout: one build at a
# time (the overlay is rebuilt from scratch), and whoever waited re-checks.
if command -v flock >/dev/null 2>&1; then
    exec 9>"$out/build.lock"
    flock 9
fi

# What the binary was built from besides our files: an upgraded govmomi
# package or Go keeps its old mtimes, so compare versions, not times.
stamp="$out/vcsim.stamp"
versions="govmomi $(dpkg-query -W -f='${Version}' golang-github-vmware-govmomi-dev 2>/dev/null || echo unknown); $(go version)"

# Up to date? -nt is false when the binary does not exist, so test that first.
if [ -z "${VCSIM_FORCE_BUILD:-}" ] && [ -x "$bin" ] &&
    [ "$(cat "$stamp" 2>/dev/null)" = "$versions" ]; then
    stale=""
    for f in "$here/main.go" "$here/build.sh" "$here"/patches/*.patch; do
        [ -e "$f" ] || continue
        [ "$f" -nt "$bin" ] && stale="$f"
    done
    if [ -z "$stale" ]; then
        echo "$bin is up to date"
        exit 0
    fi
fi

# A fresh copy every time: applying patches to an already patched tree would
# fail, and the copy is small (about 30 MB, a second or two).
rm -rf "$overlay"
mkdir -p "$(dirname "$dst")"
cp -a "$src" "$dst"
chmod -R u+w "$dst"

for p in "$here"/patches/*.patch; do
    [ -e "$p" ] || continue
    echo "applying $(basename "$p")"
    patch -p1 --quiet --forward --batch -d "$dst" <"$p" ||
        die "patch $(basename "$p") does not apply to $src ($versions)"
done

# go build wants main.go inside a GOPATH-less directory of its own.
mkdir -p "$out/cmd"
cp "$here/main.go" "$out/cmd/main.go"

echo "building $bin"
cd "$out/cmd"
GOPATH="$overlay:/usr/share/gocode" GO111MODULE=off GOFLAGS= \
    GOCACHE="$out/gocache" CGO_ENABLED=0 \
    go build -o "$bin.tmp" . || die "go build failed"
mv "$bin.tmp" "$bin"
echo "$versions" >"$stamp"
echo "built $bin"
