// Interop client for Wisp's Workload API, built on java-spiffe (X509Source, JwtSource, the provider's
// KeyManager/TrustManager). test/e2e/java-spiffe-interop.test.ts runs it as a real workload against a real
// wisp-agent. Each mode prints one JSON line on stdout; errors go to stderr with a non-zero exit.
package wisp.interop;

import io.spiffe.provider.SpiffeKeyManager;
import io.spiffe.provider.SpiffeTrustManager;
import io.spiffe.spiffeid.SpiffeId;
import io.spiffe.svid.jwtsvid.JwtSvid;
import io.spiffe.svid.x509svid.X509Svid;
import io.spiffe.workloadapi.DefaultJwtSource;
import io.spiffe.workloadapi.DefaultWorkloadApiClient;
import io.spiffe.workloadapi.DefaultX509Source;
import io.spiffe.workloadapi.JwtSource;
import io.spiffe.workloadapi.JwtSourceOptions;
import io.spiffe.workloadapi.WorkloadApiClient;
import io.spiffe.workloadapi.X509Source;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.nio.charset.StandardCharsets;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.util.HashMap;
import java.util.Map;
import java.util.Set;
import javax.net.ssl.KeyManager;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLServerSocket;
import javax.net.ssl.SSLSocket;
import javax.net.ssl.TrustManager;

public final class Main {
  private static final Duration INIT_TIMEOUT = Duration.ofSeconds(20);

  public static void main(String[] args) throws Exception {
    Map<String, String> opt = new HashMap<>();
    for (int i = 0; i + 1 < args.length; i += 2) opt.put(args[i].replaceFirst("^-+", ""), args[i + 1]);
    String socket = opt.get("socket");
    String mode = opt.getOrDefault("mode", "x509");
    try {
      switch (mode) {
        case "x509" -> x509(socket);
        case "jwt" -> jwt(socket, opt.getOrDefault("audience", "interop"));
        case "serve" -> serve(socket, opt.get("peer"));
        case "dial" -> dial(socket, opt.get("addr"), opt.get("peer"));
        default -> throw new IllegalArgumentException("unknown mode " + mode);
      }
    } catch (Exception e) {
      e.printStackTrace();
      System.exit(1);
    }
    System.exit(0); // the sources' gRPC threads are not daemons
  }

  private static X509Source x509Source(String socket) throws Exception {
    return DefaultX509Source.newSource(
        DefaultX509Source.X509SourceOptions.builder().spiffeSocketPath(socket).initTimeout(INIT_TIMEOUT).build());
  }

  /** X509Source: the default SVID, its chain checked against the trust domain's bundle from the same source. */
  private static void x509(String socket) throws Exception {
    try (X509Source source = x509Source(socket)) {
      X509Svid svid = source.getX509Svid();
      X509Certificate leaf = svid.getLeaf();
      var bundle = source.getBundleForTrustDomain(svid.getSpiffeId().getTrustDomain());
      // the trust manager runs java-spiffe's own path validation (X509SvidValidator) against the bundle
      new SpiffeTrustManager(source, () -> Set.of(svid.getSpiffeId()))
          .checkClientTrusted(svid.getChainArray(), "EC");
      emit(Map.of("spiffeId", svid.getSpiffeId().toString(), "expiresAt", leaf.getNotAfter().getTime() / 1000,
          "chain", svid.getChain().size(), "bundleAuthorities", bundle.getX509Authorities().size()));
    }
  }

  /** JwtSource: a JWT-SVID, validated locally against the JWT bundle and remotely through ValidateJWTSVID. */
  private static void jwt(String socket, String audience) throws Exception {
    try (JwtSource source = DefaultJwtSource.newSource(
            JwtSourceOptions.builder().spiffeSocketPath(socket).initTimeout(INIT_TIMEOUT).build());
        WorkloadApiClient client = DefaultWorkloadApiClient.newClient(
            DefaultWorkloadApiClient.ClientOptions.builder().spiffeSocketPath(socket).build())) {
      JwtSvid svid = source.fetchJwtSvid(audience);
      JwtSvid local = JwtSvid.parseAndValidate(svid.getToken(), source, Set.of(audience));
      JwtSvid remote = client.validateJwtSvid(svid.getToken(), audience);
      emit(Map.of("spiffeId", svid.getSpiffeId().toString(), "local", local.getSpiffeId().toString(),
          "remote", remote.getSpiffeId().toString(), "expiresAt", svid.getExpiry().getTime() / 1000));
    }
  }

  /** TLS 1.3 context from java-spiffe's KeyManager (own SVID) and TrustManager (bundle + accepted peer ID). */
  private static SSLContext tls(X509Source source, String peer) throws Exception {
    SpiffeId expected = SpiffeId.parse(peer);
    SSLContext ctx = SSLContext.getInstance("TLSv1.3");
    ctx.init(new KeyManager[] {new SpiffeKeyManager(source)},
        new TrustManager[] {new SpiffeTrustManager(source, () -> Set.of(expected))}, null);
    return ctx;
  }

  private static String peerId(javax.net.ssl.SSLSession session) throws Exception {
    X509Certificate cert = (X509Certificate) session.getPeerCertificates()[0];
    for (var san : cert.getSubjectAlternativeNames()) if ((Integer) san.get(0) == 6) return (String) san.get(1);
    throw new IllegalStateException("peer certificate has no URI SAN");
  }

  private static void serve(String socket, String peer) throws Exception {
    try (X509Source source = x509Source(socket);
        SSLServerSocket ln = (SSLServerSocket) tls(source, peer).getServerSocketFactory()
            .createServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
      ln.setNeedClientAuth(true);
      emit(Map.of("listening", "127.0.0.1:" + ln.getLocalPort()));
      try (SSLSocket conn = (SSLSocket) ln.accept()) {
        InputStream in = conn.getInputStream();
        byte[] buf = in.readNBytes(4);
        String who = peerId(conn.getSession());
        conn.getOutputStream().write("pong".getBytes(StandardCharsets.UTF_8));
        conn.getOutputStream().flush();
        emit(Map.of("received", new String(buf, StandardCharsets.UTF_8), "peer", who));
      }
    }
  }

  private static void dial(String socket, String addr, String peer) throws Exception {
    String[] hp = addr.split(":");
    try (X509Source source = x509Source(socket);
        SSLSocket conn = (SSLSocket) tls(source, peer).getSocketFactory().createSocket(hp[0], Integer.parseInt(hp[1]))) {
      conn.startHandshake();
      OutputStream out = conn.getOutputStream();
      out.write("ping".getBytes(StandardCharsets.UTF_8));
      out.flush();
      byte[] buf = conn.getInputStream().readNBytes(4);
      emit(Map.of("received", new String(buf, StandardCharsets.UTF_8), "peer", peerId(conn.getSession())));
    }
  }

  /** One flat JSON object (string and number values only). */
  private static void emit(Map<String, Object> fields) {
    StringBuilder sb = new StringBuilder("{");
    for (var e : fields.entrySet()) {
      if (sb.length() > 1) sb.append(',');
      sb.append('"').append(e.getKey()).append("\":");
      Object v = e.getValue();
      if (v instanceof Number) sb.append(v);
      else sb.append('"').append(v.toString().replace("\\", "\\\\").replace("\"", "\\\"")).append('"');
    }
    System.out.println(sb.append('}'));
    System.out.flush();
  }
}
