// Interop client for Wisp's Workload API, built on go-spiffe v2 (the reference SPIFFE client library).
// The TypeScript interop test runs it as a real workload against a real wisp-agent. Each mode prints one
// JSON line per result on stdout; errors go to stderr with a non-zero exit.
package main

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/exp/svid/witsvid"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"github.com/spiffe/go-spiffe/v2/svid/jwtsvid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	"github.com/spiffe/go-spiffe/v2/workloadapi"
)

func emit(v any) {
	b, _ := json.Marshal(v)
	fmt.Println(string(b))
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
	os.Exit(1)
}

func main() {
	mode := flag.String("mode", "x509", "x509 | jwt | wit | serve | dial | watch")
	socket := flag.String("socket", os.Getenv("SPIFFE_ENDPOINT_SOCKET"), "Workload API address (unix:///path)")
	audience := flag.String("audience", "interop", "JWT audience")
	peerID := flag.String("peer", "", "expected SPIFFE ID of the TLS peer")
	addr := flag.String("addr", "127.0.0.1:0", "TLS address (serve: listen, dial: connect)")
	updates := flag.Int("updates", 2, "watch: X509 contexts to see before exiting")
	timeout := flag.Duration("timeout", 60*time.Second, "overall deadline")
	flag.Parse()

	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	clientOpt := workloadapi.WithClientOptions(workloadapi.WithAddr(*socket))

	switch *mode {
	case "x509":
		x509Ctx, err := workloadapi.FetchX509Context(ctx, workloadapi.WithAddr(*socket))
		if err != nil {
			fail("fetch x509 context: %v", err)
		}
		svid := x509Ctx.DefaultSVID()
		// go-spiffe's own path validation of the SVID against the bundle it received.
		if _, _, err := x509svid.Verify(svid.Certificates, x509Ctx.Bundles); err != nil {
			fail("x509svid.Verify: %v", err)
		}
		emit(map[string]any{"spiffeId": svid.ID.String(), "expiresAt": svid.Certificates[0].NotAfter.Unix(),
			"svids": len(x509Ctx.SVIDs), "bundles": x509Ctx.Bundles.Len(), "hint": svid.Hint,
			"leaf": base64.StdEncoding.EncodeToString(svid.Certificates[0].Raw), "authorities": authoritiesOf(x509Ctx.Bundles, svid.ID.TrustDomain())})
	case "jwt":
		client, err := workloadapi.New(ctx, workloadapi.WithAddr(*socket))
		if err != nil {
			fail("client: %v", err)
		}
		defer client.Close()
		svid, err := client.FetchJWTSVID(ctx, jwtsvid.Params{Audience: *audience})
		if err != nil {
			fail("fetch jwt svid: %v", err)
		}
		bundles, err := client.FetchJWTBundles(ctx)
		if err != nil {
			fail("fetch jwt bundles: %v", err)
		}
		// Validate locally with go-spiffe against the JWT bundles, and remotely through ValidateJWTSVID.
		local, err := jwtsvid.ParseAndValidate(svid.Marshal(), bundles, []string{*audience})
		if err != nil {
			fail("jwtsvid.ParseAndValidate: %v", err)
		}
		remote, err := client.ValidateJWTSVID(ctx, svid.Marshal(), *audience)
		if err != nil {
			fail("ValidateJWTSVID: %v", err)
		}
		emit(map[string]any{"spiffeId": svid.ID.String(), "local": local.ID.String(), "remote": remote.ID.String(), "expiresAt": svid.Expiry.Unix()})
	case "wit":
		// go-spiffe's experimental WIT-SVID support (exp/svid/witsvid, v2.9.0): FetchWITSVID and
		// FetchWITBundles, then its own validation of the token against the WIT bundles.
		client, err := workloadapi.New(ctx, workloadapi.WithAddr(*socket))
		if err != nil {
			fail("client: %v", err)
		}
		defer client.Close()
		svid, err := client.FetchWITSVID(ctx, "")
		if err != nil {
			fail("fetch wit svid: %v", err)
		}
		bundles, err := client.FetchWITBundles(ctx)
		if err != nil {
			fail("fetch wit bundles: %v", err)
		}
		validated, err := witsvid.ParseAndValidate(svid.Marshal(), bundles)
		if err != nil {
			fail("witsvid.ParseAndValidate: %v", err)
		}
		// the private key handed out is the one cnf.jwk names: a signature by it verifies with cnf's key
		signer, ok := svid.PrivateKey.(crypto.Signer)
		if !ok {
			fail("private key is not a signer: %T", svid.PrivateKey)
		}
		digest := sha256.Sum256([]byte("wisp proof of possession"))
		sig, err := signer.Sign(rand.Reader, digest[:], crypto.SHA256)
		if err != nil {
			fail("sign: %v", err)
		}
		pub, ok := validated.PublicKey.(*ecdsa.PublicKey)
		if !ok || !ecdsa.VerifyASN1(pub, digest[:], sig) {
			fail("a signature by the WIT-SVID's private key does not verify with cnf.jwk")
		}
		emit(map[string]any{"spiffeId": validated.ID.String(), "kid": validated.KeyID, "expiresAt": validated.Expiry.Unix(), "hint": svid.Hint, "token": svid.Marshal(), "pop": true})
	case "serve":
		source, err := workloadapi.NewX509Source(ctx, clientOpt)
		if err != nil {
			fail("x509 source: %v", err)
		}
		defer source.Close()
		id := spiffeid.RequireFromString(*peerID)
		ln, err := spiffetls.ListenWithMode(ctx, "tcp", *addr, spiffetls.MTLSServerWithSource(tlsconfig.AuthorizeID(id), source))
		if err != nil {
			fail("listen: %v", err)
		}
		defer ln.Close()
		emit(map[string]any{"listening": ln.Addr().String()})
		conn, err := ln.Accept()
		if err != nil {
			fail("accept: %v", err)
		}
		defer conn.Close()
		buf := make([]byte, 4)
		if _, err := io.ReadFull(conn, buf); err != nil {
			fail("read: %v", err)
		}
		peer, err := spiffetls.PeerIDFromConn(conn)
		if err != nil {
			fail("peer id: %v", err)
		}
		if _, err := conn.Write([]byte("pong")); err != nil {
			fail("write: %v", err)
		}
		emit(map[string]any{"received": string(buf), "peer": peer.String()})
	case "dial":
		source, err := workloadapi.NewX509Source(ctx, clientOpt)
		if err != nil {
			fail("x509 source: %v", err)
		}
		defer source.Close()
		id := spiffeid.RequireFromString(*peerID)
		conn, err := spiffetls.DialWithMode(ctx, "tcp", *addr, spiffetls.MTLSClientWithSource(tlsconfig.AuthorizeID(id), source))
		if err != nil {
			fail("dial: %v", err)
		}
		defer conn.Close()
		if _, err := conn.Write([]byte("ping")); err != nil {
			fail("write: %v", err)
		}
		buf := make([]byte, 4)
		if _, err := io.ReadFull(conn, buf); err != nil {
			fail("read: %v", err)
		}
		peer, _ := spiffetls.PeerIDFromConn(conn)
		emit(map[string]any{"received": string(buf), "peer": peer.String()})
	case "watch":
		client, err := workloadapi.New(ctx, workloadapi.WithAddr(*socket))
		if err != nil {
			fail("client: %v", err)
		}
		defer client.Close()
		w := &watcher{left: *updates, done: cancel}
		err = client.WatchX509Context(ctx, w)
		if w.left > 0 {
			fail("watch ended after %d of %d updates: %v", *updates-w.left, *updates, err)
		}
	default:
		fail("unknown mode %q", *mode)
	}
}

type watcher struct {
	left int
	done context.CancelFunc
}

func (w *watcher) OnX509ContextUpdate(c *workloadapi.X509Context) {
	svid := c.DefaultSVID()
	if _, _, err := x509svid.Verify(svid.Certificates, c.Bundles); err != nil {
		fail("watch: x509svid.Verify: %v", err)
	}
	emit(map[string]any{"spiffeId": svid.ID.String(), "serial": serialOf(svid.Certificates[0])})
	w.left--
	if w.left <= 0 {
		w.done()
	}
}

func (w *watcher) OnX509ContextWatchError(err error) {
	if w.left > 0 {
		fmt.Fprintf(os.Stderr, "watch error: %v\n", err)
	}
}

func serialOf(c *x509.Certificate) string { return c.SerialNumber.Text(16) }

// authoritiesOf counts the X.509 authorities go-spiffe holds for td (the localauthority e2e watches it shrink on revoke).
func authoritiesOf(set *x509bundle.Set, td spiffeid.TrustDomain) int {
	b, ok := set.Get(td)
	if !ok {
		return 0
	}
	return len(b.X509Authorities())
}
