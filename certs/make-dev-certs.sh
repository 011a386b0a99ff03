#!/usr/bin/env bash
# Makes a DEVELOPMENT certificate authority and a server certificate signed by it,
# for credbroker's MQTT/TLS listener. Needs only openssl (1.1.1 or 3.x).
#
#   certs/make-dev-certs.sh [--force] [--days N] OUTDIR [HOSTNAME|IP ...]
#
# Writes OUTDIR/ca.key, ca.crt, server.key, server.crt (keys mode 0600).
# The server certificate's subjectAltName covers localhost, 127.0.0.1, ::1
# and every HOSTNAME or IP address given. See certs/README.md.
# NOT FOR PRODUCTION: use a real PKI there.
set -euo pipefail

usage() {
  echo "usage: $0 [--force] [--days N] OUTDIR [HOSTNAME|IP ...]" >&2
  exit 2
}
die() { echo "make-dev-certs: $*" >&2; exit 1; }

force=0
days=825          # server certificate (825 days: the most Apple platforms accept)
ca_days=3650      # development CA
args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --force|-f) force=1 ;;
    --days) [ $# -ge 2 ] || usage; days="$2"; shift ;;
    --days=*) days="${1#--days=}" ;;
    -h|--help) usage ;;
    --) shift; args+=("$@"); break ;;
    -*) echo "make-dev-certs: unknown option $1" >&2; usage ;;
    *) args+=("$1") ;;
  esac
  shift
done
[ ${#args[@]} -ge 1 ] || usage
case "$days" in ''|*[!0-9]*) die "--days needs a positive whole number, got \"$days\"" ;; esac
[ "$days" -gt 0 ] || die "--days needs a positive whole number"
command -v openssl >/dev/null || die "openssl not found (apt-get install openssl)"

out="${args[0]}"
hosts=("${args[@]:1}")

# subjectAltName: localhost, loopback, plus every extra name (IP addresses as IP:, the rest as DNS:).
san="DNS:localhost,IP:127.0.0.1,IP:::1"
for h in "${hosts[@]+"${hosts[@]}"}"; do
  if [[ "$h" =~ ^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$ ]] || [[ "$h" == *:* ]]; then
    san="$san,IP:$h"
  elif [[ "$h" =~ ^[A-Za-z0-9*]([A-Za-z0-9.-]*[A-Za-z0-9])?$ ]]; then
    san="$san,DNS:$h"
  else
    die "not a valid hostname or IP address: \"$h\""
  fi
done
cn="${hosts[0]:-localhost}"

files=(ca.key ca.crt server.key server.crt)
mkdir -p "$out"
if [ "$force" -eq 0 ]; then
  for f in "${files[@]}"; do
    [ -e "$out/$f" ] && die "$out/$f already exists; refusing to overwrite (use --force to replace every file)"
  done
fi

umask 077
tmp="$(mktemp -d "$out/.make-dev-certs.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT

genkey() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -pkeyopt ec_param_enc:named_curve -out "$1" 2>/dev/null; }

# 1. Development CA: self-signed, may sign only end-entity certificates.
genkey "$tmp/ca.key"
cat >"$tmp/ca.cnf" <<CNF
[req]
distinguished_name = dn
prompt = no
x509_extensions = v3_ca
[dn]
O = credbroker development
CN = credbroker development CA (NOT FOR PRODUCTION)
[v3_ca]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
CNF
openssl req -new -x509 -sha256 -key "$tmp/ca.key" -days "$ca_days" -config "$tmp/ca.cnf" -out "$tmp/ca.crt"

# 2. Server key and certificate signed by the CA.
genkey "$tmp/server.key"
cat >"$tmp/server.cnf" <<CNF
[req]
distinguished_name = dn
prompt = no
[dn]
O = credbroker development
CN = $cn
[v3_server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = $san
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid, issuer
CNF
openssl req -new -sha256 -key "$tmp/server.key" -config "$tmp/server.cnf" -out "$tmp/server.csr"
serial="0x$(openssl rand -hex 16)"
openssl x509 -req -sha256 -in "$tmp/server.csr" -CA "$tmp/ca.crt" -CAkey "$tmp/ca.key" -set_serial "$serial" \
  -days "$days" -extfile "$tmp/server.cnf" -extensions v3_server -out "$tmp/server.crt" 2>/dev/null
openssl verify -CAfile "$tmp/ca.crt" "$tmp/server.crt" >/dev/null || die "the new server certificate does not verify against the new CA"

chmod 600 "$tmp/ca.key" "$tmp/server.key"
chmod 644 "$tmp/ca.crt" "$tmp/server.crt"
for f in "${files[@]}"; do mv -f "$tmp/$f" "$out/$f"; done

echo "wrote $out/ca.key $out/ca.crt $out/server.key $out/server.crt"
echo "server certificate subjectAltName: $san (valid $days days; CA valid $ca_days days)"
echo "DEVELOPMENT ONLY: keep the .key files out of version control."
