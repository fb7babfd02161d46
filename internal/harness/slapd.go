package harness

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// slapdStartTimeout bounds how long slapd may take to accept connections.
const slapdStartTimeout = 15 * time.Second

// The directory every Slapd serves.
const (
	// SlapdSuffix is the directory's root.
	SlapdSuffix = "dc=example,dc=com"
	// SlapdAdminDN and SlapdAdminPassword are the root DN's credentials (the rootdn of the
	// database: it may read and write everything).
	SlapdAdminDN       = "cn=admin," + SlapdSuffix
	SlapdAdminPassword = "admin-secret"
)

// Slapd is Debian's OpenLDAP server on a loopback port, with a temporary configuration and
// database, answering plain LDAP with StartTLS: its certificate (for 127.0.0.1 and localhost)
// is signed by a test CA made for it (CABundle).
type Slapd struct {
	proc    *Process
	addr    string
	dir     string
	caPEM   []byte
	ldapadd string
	ldapmod string
	ldapdel string
}

// slapdBinary finds slapd on PATH or in /usr/sbin (not on a non-root PATH).
func slapdBinary() (string, error) {
	find := func() (string, error) {
		if p, err := exec.LookPath("slapd"); err == nil {
			return p, nil
		}
		if _, err := os.Stat("/usr/sbin/slapd"); err != nil {
			return "", err
		}
		return "/usr/sbin/slapd", nil
	}
	return Provide("slapd", find, Install{Script: "hack/apt-install.sh", Args: []string{"slapd", "ldap-utils"}})
}

// StartSlapd starts slapd on a free loopback port with its configuration, database, TLS files
// and log (slapd.log) in dir, and waits until it accepts connections. A missing slapd or
// ldap-utils is installed (Provide) or the error says what to run. Stop it with Stop.
func StartSlapd(dir string) (*Slapd, error) {
	bin, err := slapdBinary()
	if err != nil {
		return nil, err
	}
	s := &Slapd{dir: dir}
	for _, t := range []struct {
		name string
		out  *string
	}{{"ldapadd", &s.ldapadd}, {"ldapmodify", &s.ldapmod}, {"ldapdelete", &s.ldapdel}} {
		if *t.out, err = Tool(t.name, "ldap-utils"); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o700); err != nil {
		return nil, err
	}
	if s.caPEM, err = writeTestTLS(dir); err != nil {
		return nil, err
	}
	conf := filepath.Join(dir, "slapd.conf")
	if err := os.WriteFile(conf, []byte(slapdConf(dir)), 0o600); err != nil {
		return nil, err
	}
	err = retryPortClash(func() error {
		port, err := FreePort()
		if err != nil {
			return err
		}
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		p, err := Start(Command{Path: bin, Log: filepath.Join(dir, "slapd.log"),
			Args: []string{"-d", "0", "-h", "ldap://" + addr + "/", "-f", conf}})
		if err != nil {
			return err
		}
		if err := p.waitFor(context.Background(), slapdStartTimeout, "slapd on "+addr, func(ctx context.Context) error {
			c, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
			if err != nil {
				return err
			}
			return c.Close()
		}); err != nil {
			_ = p.Kill()
			if strings.Contains(p.Log(), "Address already in use") {
				return fmt.Errorf("%w: address already in use", err)
			}
			return err
		}
		s.proc, s.addr = p, addr
		return nil
	})
	if err != nil {
		return nil, err
	}
	base := "dn: " + SlapdSuffix + "\nobjectClass: dcObject\nobjectClass: organization\no: Example\ndc: example\n\n" +
		"dn: ou=people," + SlapdSuffix + "\nobjectClass: organizationalUnit\nou: people\n\n" +
		"dn: ou=groups," + SlapdSuffix + "\nobjectClass: organizationalUnit\nou: groups\n"
	if err := s.Add(base); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

// NewSlapd is StartSlapd for one test: in the test's temporary directory, killed when the test
// ends, and a failure to start fails the test. Under go test -short (make test-unit) the test
// is skipped instead; make test and CI never run -short.
func NewSlapd(tb testing.TB) *Slapd {
	tb.Helper()
	if testing.Short() {
		tb.Skip("needs slapd: skipped by -short (make test-unit); make test runs it")
	}
	s, err := StartSlapd(tb.TempDir())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(s.Stop)
	return s
}

// slapdConf is a slapd.conf of one mdb database under SlapdSuffix, with the files in dir.
func slapdConf(dir string) string {
	return strings.Join([]string{
		"include /etc/ldap/schema/core.schema",
		"include /etc/ldap/schema/cosine.schema",
		"include /etc/ldap/schema/nis.schema",
		"include /etc/ldap/schema/inetorgperson.schema",
		"modulepath /usr/lib/ldap",
		"moduleload back_mdb",
		"pidfile " + filepath.Join(dir, "slapd.pid"),
		"TLSCACertificateFile " + filepath.Join(dir, "ca.pem"),
		"TLSCertificateFile " + filepath.Join(dir, "server.pem"),
		"TLSCertificateKeyFile " + filepath.Join(dir, "server.key"),
		"database mdb",
		`suffix "` + SlapdSuffix + `"`,
		`rootdn "` + SlapdAdminDN + `"`,
		"rootpw " + SlapdAdminPassword,
		"directory " + filepath.Join(dir, "data"),
		"maxsize 67108864",
		"index objectClass eq",
		// Entries may read themselves (their own bind) and the admin everything: a user's
		// bind proves the password, nothing more.
		"access to attrs=userPassword by self write by anonymous auth by * none",
		"access to * by self read by users read by * none",
		"",
	}, "\n")
}

// writeTestTLS writes a test CA (ca.pem) and a server certificate it signs for 127.0.0.1 and
// localhost (server.pem, server.key) to dir, and returns the CA's PEM.
func writeTestTLS(dir string) ([]byte, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "latchkey test LDAP CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	for name, data := range map[string][]byte{
		"ca.pem":     caPEM,
		"server.pem": pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		"server.key": pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
	} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			return nil, err
		}
	}
	if _, err := tls.X509KeyPair(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})); err != nil {
		return nil, err
	}
	return caPEM, nil
}

// Addr is the server's host:port (plain LDAP; StartTLS with CABundle).
func (s *Slapd) Addr() string { return s.addr }

// CABundle is the PEM of the CA that signed the server's certificate.
func (s *Slapd) CABundle() []byte { return s.caPEM }

// Add adds the LDIF's entries with ldapadd, bound as the admin.
func (s *Slapd) Add(ldif string) error { return s.run(s.ldapadd, ldif) }

// Modify applies the LDIF's changes with ldapmodify, bound as the admin.
func (s *Slapd) Modify(ldif string) error { return s.run(s.ldapmod, ldif) }

// Delete deletes the entry of the DN with ldapdelete, bound as the admin.
func (s *Slapd) Delete(dn string) error { return s.run(s.ldapdel, "", dn) }

// run runs an ldap-utils tool against the server as the admin, with stdin.
func (s *Slapd) run(tool, stdin string, args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), slapdStartTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, tool, append([]string{"-x", "-H", "ldap://" + s.addr, "-D", SlapdAdminDN, "-w", SlapdAdminPassword}, args...)...) //nolint:gosec // a test tool
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("harness: %s: %w: %s", filepath.Base(tool), err, out)
	}
	return nil
}

// AddUser adds inetOrgPerson uid=<uid> under ou=people with the password, mail and cn, and
// returns its DN.
func (s *Slapd) AddUser(uid, password, mail, cn string) (string, error) {
	dn := "uid=" + uid + ",ou=people," + SlapdSuffix
	ldif := "dn: " + dn + "\nobjectClass: inetOrgPerson\nuid: " + uid + "\nsn: " + uid + "\ncn: " + cn +
		"\nmail: " + mail + "\nuserPassword: " + password + "\n"
	return dn, s.Add(ldif)
}

// AddGroup adds groupOfNames cn=<name> under ou=groups with the member DNs.
func (s *Slapd) AddGroup(name string, members ...string) error {
	if len(members) == 0 {
		return errors.New("harness: a groupOfNames needs a member")
	}
	ldif := "dn: cn=" + name + ",ou=groups," + SlapdSuffix + "\nobjectClass: groupOfNames\ncn: " + name + "\n"
	for _, m := range members {
		ldif += "member: " + m + "\n"
	}
	return s.Add(ldif)
}

// Stop kills the server; stopping a stopped server does nothing.
func (s *Slapd) Stop() {
	if s.proc != nil {
		_ = s.proc.Kill()
	}
}
