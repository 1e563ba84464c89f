#!/usr/bin/env bash
# The toolchain-free layout of sparsegrid, for `make dist` (a tarball) and `make install` (a
# prefix). Both lay out the same tree:
#
#   bin/sparsegrid                          the binary (release: static Swift standard library,
#                                           RUNPATH $ORIGIN/../lib/sparsegrid)
#   lib/sparsegrid/*.so.*                   the shared libraries it needs beyond glibc and the
#                                           C++ runtime (libzmq and its dependencies, libsqlite3)
#   share/man/man1/sparsegrid.1             the man page
#   share/sparsegrid/wheels/*.whl           the engine (engine/) as a wheel
#   share/sparsegrid/deploy/                a copy of deploy/
#
# and the tarball adds INSTALL (scripts/INSTALL.dist) at its top.
#
# Usage (from the repository root; the Makefile's `dist` and `install` targets call it):
#   scripts/dist.sh stage DIR BINARY PYTHON     lay the tree out under DIR (an install prefix)
#   scripts/dist.sh tarball OUTDIR BINARY PYTHON
#                                               dist/sparsegrid-VERSION-linux-ARCH.tar.gz
# PYTHON builds the wheel (offline: it needs setuptools >= 70.1, as the test venv has).
# SPARSEGRID_DIST_TOOLCHAIN_LIBS=skip lets `stage` take a binary that needs the Swift runtime's
# shared libraries (a debug build: the install test uses one) and leaves those out; such a
# tree runs only where the toolchain is. `tarball` always refuses that binary.
set -euo pipefail

# Scratch space for the wheel build and the tarball's tree, removed on exit.
SCRATCH=$(mktemp -d)
trap 'rm -rf "$SCRATCH"' EXIT

die() {
  echo "dist.sh: $*" >&2
  exit 1
}

# Libraries every glibc system has, in the version the binary was linked against or newer:
# glibc's own, and the GCC runtime (libstdc++, libgcc_s). The C++ runtime is left to the host
# on purpose: libzmq is C++ and the Swift runtime needs it, every Linux distribution ships it as
# part of its base system (Debian: libgcc-s1 is `required`, libstdc++6 is a dependency of apt),
# it is backward compatible, and glibc itself loads the host's libgcc_s for thread
# cancellation, so a private copy could mean two unwinders in one process. The binary needs
# glibc and libstdc++ at least as new as the build host's; INSTALL says which.
is_system_lib() {
  case "$1" in
  linux-vdso.so.* | ld-linux*.so.* | libc.so.* | libm.so.* | libmvec.so.* | libpthread.so.* | \
    libdl.so.* | librt.so.* | libresolv.so.* | libutil.so.* | libanl.so.* | \
    libstdc++.so.* | libgcc_s.so.*)
    return 0
    ;;
  esac
  return 1
}

# `ldd BINARY` as "NAME PATH" lines (PATH "not-found" when unresolved; none for the vDSO).
# LD_LIBRARY_PATH is left out: the tree must not depend on it.
resolved_libs() {
  env -u LD_LIBRARY_PATH ldd "$1" | awk '
    $2 == "=>" && $3 == "not" { print $1, "not-found"; next }
    $2 == "=>" { print $1, $3; next }
    $1 ~ /^\// { n = split($1, parts, "/"); print parts[n], $1 }'
}

binary_version() {
  local version
  version=$("$1" --version) || die "$1 --version failed"
  [[ $version =~ ^[0-9]+\.[0-9]+\.[0-9]+([-+.][0-9A-Za-z.+-]+)?$ ]] || die "$1 --version printed '$version'"
  echo "$version"
}

# stage DIR BINARY PYTHON STRICT: the tree under DIR. STRICT=1 (the tarball) also checks that
# the staged binary resolves every library from the tree or the system set above.
stage() {
  local dir=$1 binary=$2 python=$3 strict=$4
  [ -x "$binary" ] || die "no binary at $binary (make release builds it)"
  local version
  version=$(binary_version "$binary")

  local lib="$dir/lib/sparsegrid" share="$dir/share/sparsegrid"
  # Only the tree's own folders are replaced: DIR may be /usr/local.
  rm -rf "$lib" "$share/wheels" "$share/deploy"
  install -d "$dir/bin" "$lib" "$dir/share/man/man1" "$share/wheels"
  install -m 755 "$binary" "$dir/bin/sparsegrid"
  install -m 644 docs/sparsegrid.1 "$dir/share/man/man1/sparsegrid.1"
  cp -R deploy "$share/deploy"
  chmod -R u+rwX,go+rX,go-w "$share/deploy"

  local name path copied=0
  while read -r name path; do
    if [ "$path" = not-found ]; then
      die "$binary needs $name, which ldd does not find on this host"
    fi
    is_system_lib "$name" && continue
    if [[ $name == libswift* || $path == */lib/swift/* ]]; then
      if [ "$strict" = 0 ] && [ "${SPARSEGRID_DIST_TOOLCHAIN_LIBS:-}" = skip ]; then
        continue
      fi
      die "$binary needs the Swift runtime's $name ($path): build it with --static-swift-stdlib (make release)"
    fi
    install -m 644 "$path" "$lib/$name"
    # A RUNPATH applies to the object that carries it only, not to the libraries it loads:
    # each private library finds its own dependencies (libzmq → libsodium, ...) beside itself.
    patchelf --set-rpath "\$ORIGIN" "$lib/$name"
    copied=$((copied + 1))
  done < <(resolved_libs "$binary")
  [ "$copied" -gt 0 ] || [ "$strict" = 0 ] || die "no private library copied: is $binary linked dynamically against libzmq?"

  build_wheel "$python" "$version" "$share/wheels"

  if [ "$strict" = 1 ]; then
    local runpath
    runpath=$(readelf -d "$dir/bin/sparsegrid" | sed -n 's/.*(RUNPATH).*\[\(.*\)\]$/\1/p')
    [ "$runpath" = "\$ORIGIN/../lib/sparsegrid" ] ||
      die "$binary has RUNPATH '$runpath', not \$ORIGIN/../lib/sparsegrid (make release sets it)"
    while read -r name path; do
      is_system_lib "$name" && continue
      if [ "$path" = not-found ] || [ "$(realpath "$path")" != "$(realpath "$lib/$name")" ]; then
        die "the staged binary loads $name from $path, not from lib/sparsegrid"
      fi
    done < <(resolved_libs "$dir/bin/sparsegrid")
  fi
}

# build_wheel PYTHON VERSION DEST: the engine's wheel, built offline from a copy of engine/
# (setuptools writes build/ beside its sources, and a stale build/ could add removed files).
build_wheel() {
  local python=$1 version=$2 dest=$3 work
  work=$(mktemp -d "$SCRATCH/wheel.XXXXXX")
  cp -R engine "$work/engine"
  rm -rf "$work/engine/build" "$work/engine/sparsegrid_engine.egg-info"
  # SOURCE_DATE_EPOCH: the zip entries' times (tarball sets it), so that the wheel's bytes repeat.
  "$python" -m pip wheel -q --no-deps --no-build-isolation --no-index "$work/engine" -w "$work/wheel" >&2 ||
    die "pip wheel failed (offline; $python needs setuptools >= 70.1: make venv)"
  local wheel="sparsegrid_engine-$version-py3-none-any.whl"
  [ -f "$work/wheel/$wheel" ] ||
    die "the wheel is not $wheel (does engine/sparsegrid_engine/__init__.py say $version?): $(ls "$work/wheel")"
  install -m 644 "$work/wheel/$wheel" "$dest/$wheel"
}

# The newest symbol version of glibc and of libstdc++ the binary asks for, for INSTALL.
needs() {
  objdump -T "$1" | grep -o "($2_[0-9.]*)" | tr -d '()' | sed "s/^$2_//" | sort -V | tail -n 1
}

tarball() {
  local out=$1 binary=$2 python=$3
  local version arch name work
  version=$(binary_version "$binary")
  arch=$(uname -m)
  name="sparsegrid-$version-linux-$arch"
  work=$(mktemp -d "$SCRATCH/tree.XXXXXX")
  # Every time in the tarball (and in the wheel's zip) is the last commit's.
  SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 315532800)}
  export SOURCE_DATE_EPOCH
  stage "$work/$name" "$binary" "$python" 1
  local glibc cxx
  glibc=$(needs "$work/$name/bin/sparsegrid" GLIBC)
  cxx=$(needs "$work/$name/bin/sparsegrid" GLIBCXX)
  sed -e "s/@VERSION@/$version/g" -e "s/@ARCH@/$arch/g" -e "s/@GLIBC@/$glibc/g" -e "s/@GLIBCXX@/$cxx/g" \
    scripts/INSTALL.dist >"$work/$name/INSTALL"
  chmod 644 "$work/$name/INSTALL"

  # Sorted names, owner root, every mtime the last commit's time, no gzip timestamp. gzip -6:
  # -9 takes 25 s instead of 7 here for 0.5% less.
  mkdir -p "$out"
  tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$SOURCE_DATE_EPOCH" --mode=u+rwX,go+rX,go-w \
    -C "$work" -cf - "$name" | gzip -6n >"$out/$name.tar.gz.part"
  mv "$out/$name.tar.gz.part" "$out/$name.tar.gz"
  echo "$out/$name.tar.gz ($(du -h "$out/$name.tar.gz" | cut -f1)): glibc >= $glibc, libstdc++ GLIBCXX_$cxx"
}

if [ ! -f Package.swift ] || [ ! -d engine ]; then
  die "run it from the repository root"
fi
case "${1:-}" in
stage)
  [ $# = 4 ] || die "usage: scripts/dist.sh stage DIR BINARY PYTHON"
  stage "$2" "$3" "$4" 0
  ;;
tarball)
  [ $# = 4 ] || die "usage: scripts/dist.sh tarball OUTDIR BINARY PYTHON"
  tarball "$2" "$3" "$4"
  ;;
*) die "usage: scripts/dist.sh stage DIR BINARY PYTHON | tarball OUTDIR BINARY PYTHON" ;;
esac
