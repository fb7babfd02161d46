package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/latchkey-dev/latchkey/internal/harness"
)

// writePEM writes one PEM block to dir/name and returns the path.
func writePEM(t *testing.T, dir, name, typ string, der []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600))
	return path
}

// tlsRedis starts redis-server with TLS only, its certificate issued by a CA of the test for the
// DNS name redis.test (not for 127.0.0.1), and returns its address and the CA file.
func tlsRedis(t *testing.T) (addr, caFile string) {
	t.Helper()
	bin, err := harness.Tool("redis-server", "redis-server")
	require.NoError(t, err)
	dir := t.TempDir()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	require.NoError(t, err)
	srvKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	srv := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "redis.test"},
		DNSNames: []string{"redis.test"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	srvDER, err := x509.CreateCertificate(rand.Reader, srv, ca, &srvKey.PublicKey, caKey)
	require.NoError(t, err)
	keyDER, err := x509.MarshalECPrivateKey(srvKey)
	require.NoError(t, err)
	caFile = writePEM(t, dir, "ca.crt", "CERTIFICATE", caDER)
	certFile := writePEM(t, dir, "tls.crt", "CERTIFICATE", srvDER)
	keyFile := writePEM(t, dir, "tls.key", "EC PRIVATE KEY", keyDER)

	port, err := harness.FreePort()
	require.NoError(t, err)
	addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	p, err := harness.Start(harness.Command{Path: bin, Log: filepath.Join(dir, "redis.log"), Args: []string{
		"--port", "0", "--tls-port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", dir, "--tls-cert-file", certFile, "--tls-key-file", keyFile, "--tls-auth-clients", "no"}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Kill() })
	// Ready once it completes a TLS handshake (not verified: only the listener is awaited).
	require.Eventually(t, func() bool {
		c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // readiness probe
		if err != nil {
			return false
		}
		_ = c.Close()
		return true
	}, 10*time.Second, 20*time.Millisecond, "redis-server with TLS on %s: %s", addr, p.Tail(20))
	return addr, caFile
}

func TestRedisTLSFlags(t *testing.T) {
	if testing.Short() {
		t.Skip("needs redis-server: skipped by -short (make test-unit); make test runs it")
	}
	addr, caFile := tlsRedis(t)
	notPEM := filepath.Join(t.TempDir(), "ca.crt")
	require.NoError(t, os.WriteFile(notPEM, []byte("not a certificate"), 0o600))
	for _, tc := range []struct {
		name    string
		args    []string
		wantErr string
	}{
		{name: "the CA file and the certificate's name verify Redis",
			args: []string{"--redis-tls", "--redis-tls-ca-file=" + caFile, "--redis-tls-server-name=redis.test"}},
		{name: "without the CA file Redis's certificate is refused (the system roots do not know it)",
			args: []string{"--redis-tls", "--redis-tls-server-name=redis.test"}, wantErr: "certificate signed by unknown authority"},
		{name: "without the server name the address must be in the certificate",
			args: []string{"--redis-tls", "--redis-tls-ca-file=" + caFile}, wantErr: "doesn't contain any IP SANs"},
		{name: "a server name the certificate does not carry is refused",
			args: []string{"--redis-tls", "--redis-tls-ca-file=" + caFile, "--redis-tls-server-name=other.test"}, wantErr: "not other.test"},
		{name: "insecure skip verify connects without a CA",
			args: []string{"--redis-tls", "--redis-tls-insecure-skip-verify"}},
		{name: "a CA file without a certificate is refused at start",
			args: []string{"--redis-tls", "--redis-tls-ca-file=" + notPEM}, wantErr: "no PEM certificate in it"},
		{name: "a missing CA file is refused at start",
			args: []string{"--redis-tls", "--redis-tls-ca-file=" + caFile + ".missing"}, wantErr: "--redis-tls-ca-file: open"},
		{name: "TLS options without --redis-tls are refused",
			args: []string{"--redis-tls-ca-file=" + caFile}, wantErr: "need --redis-tls"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var o redisOptions
			bindAndParse(t, o.bind, append([]string{"--redis-address=" + addr, "--redis-key-prefix=tls-test:"}, tc.args...)...)
			err := o.validate()
			if err == nil {
				s, openErr := o.open(t.Context())
				if openErr == nil {
					t.Cleanup(func() { _ = s.Close() })
				}
				err = openErr
			}
			if tc.wantErr == "" {
				assert.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.wantErr)
		})
	}
}
