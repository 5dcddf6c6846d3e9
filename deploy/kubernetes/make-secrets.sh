#!/usr/bin/env bash
# Makes fresh secrets for deploy/kubernetes and writes their hashes into its gateway.yaml. The files
# it replaces in secrets/ are examples, public in this repository, so that `kubectl kustomize` renders
# and deploy/test/kubernetes.test.ts can check the manifests: run this before applying them anywhere.
#
#   bash deploy/kubernetes/make-secrets.sh [API_HOSTNAME...]
#
# API_HOSTNAME: names the connectors and the CLI reach the API by (the certificate's names); default
# the in-cluster Service names. A certificate from your own CA is better: put it in secrets/api-tls.crt
# and secrets/api-tls.key instead, and the CA that signed it in secrets/gateway-ca.crt.
set -euo pipefail
cd "$(dirname "$0")"
hosts=("$@")
(( ${#hosts[@]} )) || hosts=(gatehouse-api gatehouse-api.gatehouse.svc gatehouse-api.gatehouse.svc.cluster.local gatehouse-gateway.gatehouse.svc gatehouse-gateway.gatehouse.svc.cluster.local)
umask 077

token() { printf '%s_%s' "$1" "$(openssl rand -base64 32 | tr '+/' '-_' | tr -d '=\n')"; }
sha256() { printf '%s' "$(cat "$1")" | sha256sum | cut -d' ' -f1; }

token gha > secrets/admin-token
token ghc > secrets/connector-token
openssl rand -base64 24 | tr -d '\n' > secrets/store-password
openssl rand -base64 24 | tr -d '\n' > secrets/app-ro-password

san=$(printf 'DNS:%s,' "${hosts[@]}"); san=${san%,}
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 825 \
  -subj "/CN=${hosts[0]}" -addext "subjectAltName=$san" \
  -keyout secrets/api-tls.key -out secrets/api-tls.crt 2>/dev/null
# Self-signed: the certificate is its own CA for the connectors (GATEHOUSE_GATEWAY_CA).
cp secrets/api-tls.crt secrets/gateway-ca.crt

sed -i -E "s/(adminTokenSha256: )[0-9a-f]{64}/\1$(sha256 secrets/admin-token)/" gateway.yaml
sed -i -E "s/(tokenSha256: )[0-9a-f]{64}/\1$(sha256 secrets/connector-token)/" gateway.yaml
echo "new secrets in $(pwd)/secrets; their hashes are in gateway.yaml. The admin token (for GATEHOUSE_ADMIN_TOKEN):" >&2
cat secrets/admin-token; echo
