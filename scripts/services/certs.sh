#!/usr/bin/env bash
# certs.sh [up|path|clean] — a throw-away certificate authority for local TLS.
#
# Writes, with openssl, under $DOMINATION_SERVICES_DIR/certs (default
# <repo>/.services/certs):
#
#   ca.pem, ca.key            the authority (trust ca.pem in clients)
#   server.pem, server.key    the servers' certificate and key (PEM, PKCS#8),
#                             for localhost and 127.0.0.1 plus CERTS_SANS
#   server.p12                the same as a PKCS#12 keystore, for Kafka
#   client.pem, client.key    a client certificate for mutual TLS
#                             (CN=domination-client)
#
# `up` (the default) creates what is missing and is a no-op otherwise, so the
# certificates stay the same across restarts; `clean` deletes them; `path`
# prints the directory. Nothing here is fit for production: the keys are not
# encrypted and the keystore password is a constant.
#
# Environment (defaults in brackets):
#   DOMINATION_SERVICES_DIR   where certs/ is written   [<repo>/.services]
#   CERTS_SANS                extra subjectAltNames for the server, e.g.
#                             "DNS:kafka,IP:10.0.0.5"    [none]
#   CERTS_DAYS                validity in days          [365]
#   CERTS_KEYSTORE_PASSWORD   password of server.p12    [domination-keystore]
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
source "$here/lib.sh"

dir="$SERVICES_DIR/certs"
days="${CERTS_DAYS:-365}"
extra_sans="${CERTS_SANS:-}"
keystore_password="${CERTS_KEYSTORE_PASSWORD:-domination-keystore}"

need_openssl() {
	command -v openssl >/dev/null || apt_install openssl
}

# sign NAME CN EXT writes NAME.key and NAME.pem, signed by the CA, with the
# x509v3 extensions EXT.
sign() {
	local name="$1" cn="$2" ext="$3"
	openssl req -new -newkey rsa:2048 -nodes -keyout "$dir/$name.key" \
		-subj "/O=domination/CN=$cn" -out "$dir/$name.csr" 2>/dev/null
	printf '%s\n' "$ext" >"$dir/$name.ext"
	openssl x509 -req -in "$dir/$name.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" \
		-CAcreateserial -days "$days" -sha256 -extfile "$dir/$name.ext" \
		-out "$dir/$name.pem" 2>/dev/null
	rm -f "$dir/$name.csr" "$dir/$name.ext"
}

up() {
	if [ -s "$dir/ca.pem" ] && [ -s "$dir/server.p12" ] && [ -s "$dir/client.pem" ] &&
		openssl x509 -checkend 86400 -noout -in "$dir/server.pem" >/dev/null 2>&1; then
		return 0
	fi
	need_openssl
	rm -rf "$dir"
	mkdir -p "$dir"
	chmod 700 "$dir"
	log "creating a throw-away CA and certificates in $dir"
	openssl req -x509 -new -newkey rsa:2048 -nodes -sha256 -days "$days" \
		-subj "/O=domination/CN=domination throw-away CA" \
		-addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
		-keyout "$dir/ca.key" -out "$dir/ca.pem" 2>/dev/null
	local sans="DNS:localhost,IP:127.0.0.1,IP:::1"
	if [ -n "$extra_sans" ]; then sans="$sans,$extra_sans"; fi
	sign server localhost "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth,clientAuth
subjectAltName=$sans"
	sign client domination-client "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth"
	openssl pkcs12 -export -name server -in "$dir/server.pem" -inkey "$dir/server.key" \
		-certfile "$dir/ca.pem" -passout "pass:$keystore_password" -out "$dir/server.p12"
	chmod 600 "$dir"/*.key "$dir/server.p12"
	log "certificates ready: CA $dir/ca.pem, server $dir/server.pem, client $dir/client.pem"
}

case "${1:-up}" in
up) up ;;
path) echo "$dir" ;;
clean) rm -rf "$dir" ;;
*) echo "usage: $0 up|path|clean" >&2; exit 2 ;;
esac
