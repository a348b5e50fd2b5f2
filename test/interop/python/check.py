"""py-spiffe (`spiffe`, `spiffe-tls` from PyPI) against a wisp-agent socket, used unchanged.

Driven by test/e2e/py-spiffe-interop.test.ts; prints one JSON object per line.
  check.py --socket unix:///path x509
  check.py --socket unix:///path jwt --audience AUD
  check.py --socket unix:///path validate --audience AUD --token JWT   (ValidateJWTSVID only)
  check.py --socket unix:///path serve --peer SPIFFE_ID                (one mTLS connection, then exits)
  check.py --socket unix:///path dial --addr HOST:PORT --peer SPIFFE_ID
"""
import argparse
import json
import sys

from spiffe import JwtSource, JwtSvid, SpiffeId, WorkloadApiClient, X509Source
from spiffetls import ListenOptions, dial, listen
from spiffetls.tlsconfig.authorize import authorize_id

TIMEOUT = 30


def out(**fields):
    print(json.dumps(fields), flush=True)


def chains_to_bundle(svid, bundle):
    """Each certificate is issued by the next; the last by an authority of the bundle."""
    chain = svid.cert_chain
    for child, parent in zip(chain, chain[1:]):
        child.verify_directly_issued_by(parent)
    for authority in bundle.x509_authorities:
        try:
            chain[-1].verify_directly_issued_by(authority)
            return True
        except Exception:  # noqa: BLE001 - another authority may have issued it
            continue
    return False


def x509(args):
    with X509Source(socket_path=args.socket, timeout_in_seconds=TIMEOUT) as source:
        svid = source.svid
        bundle = source.get_bundle_for_trust_domain(svid.spiffe_id.trust_domain)
        out(
            spiffeId=str(svid.spiffe_id),
            chainLength=len(svid.cert_chain),
            bundles=sorted(str(b.trust_domain) for b in source.bundles),
            chainsToBundle=bundle is not None and chains_to_bundle(svid, bundle),
            keyMatches=svid.private_key.public_key().public_numbers() == svid.leaf.public_key().public_numbers(),
            expiresAt=int(svid.leaf.not_valid_after_utc.timestamp()),
        )


def jwt(args):
    with JwtSource(socket_path=args.socket, timeout_in_seconds=TIMEOUT) as source:
        svid = source.fetch_svid(audience={args.audience})
        bundle = source.get_bundle_for_trust_domain(svid.spiffe_id.trust_domain)
        local = JwtSvid.parse_and_validate(svid.token, bundle, {args.audience})
        try:
            JwtSvid.parse_and_validate(svid.token, bundle, {args.audience + '-other'})
            wrong_audience_rejected = False
        except Exception:  # noqa: BLE001 - any validation error is a rejection
            wrong_audience_rejected = True
        with WorkloadApiClient(socket_path=args.socket) as client:
            remote = client.validate_jwt_svid(svid.token, args.audience)
        out(
            spiffeId=str(svid.spiffe_id),
            audience=sorted(svid.audience),
            local=str(local.spiffe_id),
            remote=str(remote.spiffe_id),
            wrongAudienceRejected=wrong_audience_rejected,
            token=svid.token,
        )


def validate(args):
    with WorkloadApiClient(socket_path=args.socket) as client:
        try:
            svid = client.validate_jwt_svid(args.token, args.audience)
            out(ok=True, spiffeId=str(svid.spiffe_id))
        except Exception as err:  # noqa: BLE001 - reported to the test
            out(ok=False, error=type(err).__name__, message=str(err))


def peer_id(conn):
    from spiffe.svid.x509_svid import _extract_spiffe_id  # the library's own SAN parsing

    return str(_extract_spiffe_id(conn.get_peer_certificate().to_cryptography()))


def serve(args):
    with X509Source(socket_path=args.socket, timeout_in_seconds=TIMEOUT) as source:
        server = listen('127.0.0.1:0', source, ListenOptions(authorize_fn=authorize_id(SpiffeId(args.peer))))
        out(listening='127.0.0.1:%d' % server.getsockname()[1])
        conn, _ = server.accept()
        conn.do_handshake()
        received = conn.recv(64).decode()
        conn.sendall(b'pong')
        out(received=received, peer=peer_id(conn))
        conn.shutdown()
        conn.close()
        server.close()


def dial_peer(args):
    with X509Source(socket_path=args.socket, timeout_in_seconds=TIMEOUT) as source:
        conn = dial(args.addr, source, authorize_fn=authorize_id(SpiffeId(args.peer)))
        conn.sendall(b'ping')
        received = conn.recv(64).decode()
        out(received=received, peer=peer_id(conn))
        conn.close()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--socket', required=True)
    parser.add_argument('mode', choices=['x509', 'jwt', 'validate', 'serve', 'dial'])
    parser.add_argument('--audience')
    parser.add_argument('--token')
    parser.add_argument('--peer')
    parser.add_argument('--addr')
    args = parser.parse_args()
    {'x509': x509, 'jwt': jwt, 'validate': validate, 'serve': serve, 'dial': dial_peer}[args.mode](args)


if __name__ == '__main__':
    sys.exit(main())
