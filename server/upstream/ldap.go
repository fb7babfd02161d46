package upstream

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/go-ldap/ldap/v3"

	"github.com/latchkey-dev/latchkey/server/registry"
)

// Errors of an LDAP sign-in; match them with errors.Is.
var (
	// ErrBadCredentials: the username matches no entry (or more than one), or the directory
	// refused the password. The login page says the same thing for each.
	ErrBadCredentials = errors.New("upstream: wrong username or password")
	// ErrServiceBind: the directory refused the service account's bind (the provider's Secret).
	ErrServiceBind = errors.New("upstream: LDAP service bind refused")
)

// Defaults of an LDAPIdentityProvider's searches (what its spec leaves empty).
const (
	DefaultLDAPUserFilter        = "(uid={})"
	DefaultLDAPUsernameAttribute = "uid"
	DefaultLDAPUIDAttribute      = "entryUUID"
	DefaultLDAPEmailAttribute    = "mail"
	DefaultLDAPNameAttribute     = "cn"
	DefaultLDAPGroupFilter       = "(member={dn})"
	DefaultLDAPGroupName         = "cn"
)

// Bounds of an LDAP exchange.
const (
	ldapTimeout           = 10 * time.Second
	maxLDAPUsernameLength = 256
	maxLDAPPasswordLength = 1024
)

// UserFilter is filter with every {} replaced by the username and every {dn} by dn, each
// escaped (RFC 4515, go-ldap's EscapeFilter): whatever the user types is a value in the
// filter, never filter syntax.
func UserFilter(filter, username, dn string) string {
	return strings.NewReplacer("{dn}", ldap.EscapeFilter(dn), "{}", ldap.EscapeFilter(username)).Replace(filter)
}

// validLDAPUsername refuses what no directory username is: empty, too long, not UTF-8, or with
// control characters (a NUL among them).
func validLDAPUsername(s string) bool {
	if s == "" || len(s) > maxLDAPUsernameLength || !utf8.ValidString(s) {
		return false
	}
	return !strings.ContainsFunc(s, unicode.IsControl)
}

// LDAP is the login flow's side of one LDAPIdentityProvider value: it dials, StartTLS or TLS
// with the provider's CA bundle, binds as the service account to search, and binds as the user
// to check the password. Each sign-in is its own connection. It is safe for concurrent use.
type LDAP struct {
	cfg registry.UpstreamLDAP
	tls *tls.Config
}

// NewLDAP checks the provider's CA bundle and returns its LDAP side.
func NewLDAP(u *registry.UpstreamLDAP) (*LDAP, error) {
	host, _, err := net.SplitHostPort(u.Host)
	if err != nil {
		return nil, fmt.Errorf("%w: host %q is not host:port", ErrInvalidMapping, u.Host)
	}
	tc := &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	if len(u.CABundle) > 0 {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(u.CABundle) {
			return nil, fmt.Errorf("%w: caBundle holds no PEM certificate", ErrInvalidMapping)
		}
		tc.RootCAs = pool
	}
	return &LDAP{cfg: *u, tls: tc}, nil
}

// connect dials the server, protects the connection (TLS, or StartTLS before anything else)
// and, with bind, binds as the service account. Network and TLS errors wrap ErrUnavailable; a
// refused service bind ErrServiceBind.
func (l *LDAP) connect(ctx context.Context, bind bool) (*ldap.Conn, error) {
	timeout := ldapTimeout
	if d, ok := ctx.Deadline(); ok {
		timeout = min(timeout, time.Until(d))
	}
	dialer := &net.Dialer{Timeout: timeout}
	var (
		c   *ldap.Conn
		err error
	)
	if l.cfg.StartTLS {
		c, err = ldap.DialURL("ldap://"+l.cfg.Host, ldap.DialWithDialer(dialer))
	} else {
		c, err = ldap.DialURL("ldaps://"+l.cfg.Host, ldap.DialWithDialer(dialer), ldap.DialWithTLSConfig(l.tls))
	}
	if err != nil {
		return nil, fmt.Errorf("%w: dialling %s: %w", ErrUnavailable, l.cfg.Host, err)
	}
	c.SetTimeout(timeout)
	if l.cfg.StartTLS {
		if err := c.StartTLS(l.tls.Clone()); err != nil {
			_ = c.Close()
			return nil, fmt.Errorf("%w: StartTLS with %s: %w", ErrUnavailable, l.cfg.Host, err)
		}
	}
	if !bind {
		return c, nil
	}
	if err := l.serviceBind(c); err != nil {
		_ = c.Close()
		return nil, err
	}
	return c, nil
}

// serviceBind binds c as the service account.
func (l *LDAP) serviceBind(c *ldap.Conn) error {
	if l.cfg.BindDN == "" || l.cfg.BindPassword == "" {
		return fmt.Errorf("%w: the bind Secret has no username or password", ErrServiceBind)
	}
	if err := c.Bind(l.cfg.BindDN, l.cfg.BindPassword); err != nil {
		if isLDAPResult(err) {
			return fmt.Errorf("%w: %s", ErrServiceBind, ldapResultText(err))
		}
		return fmt.Errorf("%w: binding: %w", ErrUnavailable, err)
	}
	return nil
}

// Probe dials, protects the connection and binds as the service account: what the provider's
// status reports (ConnectionProbe, BindSucceeded). Without bind credentials (their Secret
// missing) it only connects.
func (l *LDAP) Probe(ctx context.Context) error {
	c, err := l.connect(ctx, l.cfg.BindDN != "" || l.cfg.BindPassword != "")
	if err != nil {
		return err
	}
	return c.Close()
}

// userAttributes are the attributes read of a user's entry.
func (l *LDAP) userAttributes() []string {
	return []string{l.cfg.UsernameAttribute, l.cfg.UIDAttribute, l.cfg.EmailAttribute, l.cfg.NameAttribute}
}

// findOne searches the user base with filter and returns its only entry; none or several is
// ErrBadCredentials.
func (l *LDAP) findOne(c *ldap.Conn, filter string) (*ldap.Entry, error) {
	req := ldap.NewSearchRequest(l.cfg.UserBase, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 2, int(ldapTimeout/time.Second), false,
		filter, l.userAttributes(), nil)
	res, err := c.Search(req)
	switch {
	case ldap.IsErrorWithCode(err, ldap.LDAPResultSizeLimitExceeded), ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject):
		return nil, ErrBadCredentials
	case err != nil:
		return nil, fmt.Errorf("%w: searching users: %w", ErrUnavailable, err)
	case len(res.Entries) != 1:
		return nil, ErrBadCredentials
	}
	return res.Entries[0], nil
}

// Authenticate checks the username and password: the service account searches the user's
// entry (exactly one), the user's DN binds with the password, and the service account reads
// the groups. An empty password is refused before anything is sent (an LDAP simple bind with
// an empty password is an unauthenticated bind, which many servers accept). Wrong credentials
// and unknown users are both ErrBadCredentials.
func (l *LDAP) Authenticate(ctx context.Context, username, password string) (Identity, error) {
	if password == "" || len(password) > maxLDAPPasswordLength || !validLDAPUsername(username) {
		return Identity{}, ErrBadCredentials
	}
	c, err := l.connect(ctx, true)
	if err != nil {
		return Identity{}, err
	}
	defer c.Close() //nolint:errcheck // nothing to do about it
	entry, err := l.findOne(c, UserFilter(l.cfg.UserFilter, username, ""))
	if err != nil {
		return Identity{}, err
	}
	if err := c.Bind(entry.DN, password); err != nil {
		if isLDAPResult(err) {
			return Identity{}, ErrBadCredentials
		}
		return Identity{}, fmt.Errorf("%w: binding: %w", ErrUnavailable, err)
	}
	// Back to the service account for the group search: the user may not read groups.
	if err := l.serviceBind(c); err != nil {
		return Identity{}, err
	}
	return l.identity(c, entry)
}

// identity maps the user's entry (and groups, read with c) to an Identity.
func (l *LDAP) identity(c *ldap.Conn, e *ldap.Entry) (Identity, error) {
	uid := attributeText(e, l.cfg.UIDAttribute)
	if uid == "" || len(uid) > maxClaimLength {
		return Identity{}, fmt.Errorf("%w: the entry has no usable %s", ErrClaims, l.cfg.UIDAttribute)
	}
	username := e.GetAttributeValue(l.cfg.UsernameAttribute)
	if username == "" || len(username) > maxUsernameLength {
		return Identity{}, fmt.Errorf("%w: the entry has no usable %s", ErrClaims, l.cfg.UsernameAttribute)
	}
	id := Identity{
		Subject: Subject(l.cfg.UID, uid), Kind: registry.KindLDAP, Provider: l.cfg.Name, ProviderUID: l.cfg.UID,
		UpstreamSubject: uid, Username: username,
		Email: truncated(e.GetAttributeValue(l.cfg.EmailAttribute)), Name: truncated(e.GetAttributeValue(l.cfg.NameAttribute)),
	}
	// The directory vouches for the mail attribute as much as for the password.
	id.EmailVerified = id.Email != ""
	groups, err := l.groups(c, e.DN, username)
	if err != nil {
		return Identity{}, err
	}
	id.Groups = groups
	return id, nil
}

// groups reads the names of the user's groups (none without a group base).
func (l *LDAP) groups(c *ldap.Conn, dn, username string) ([]string, error) {
	if l.cfg.GroupBase == "" {
		return nil, nil
	}
	req := ldap.NewSearchRequest(l.cfg.GroupBase, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, maxGroups, int(ldapTimeout/time.Second), false,
		UserFilter(l.cfg.GroupFilter, username, dn), []string{l.cfg.GroupNameAttribute}, nil)
	res, err := c.Search(req)
	if err != nil && !ldap.IsErrorWithCode(err, ldap.LDAPResultSizeLimitExceeded) {
		if ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject) {
			return nil, nil
		}
		return nil, fmt.Errorf("%w: searching groups: %w", ErrUnavailable, err)
	}
	if res == nil {
		return nil, nil
	}
	var out []string
	for _, g := range res.Entries {
		if name := g.GetAttributeValue(l.cfg.GroupNameAttribute); name != "" && len(name) <= maxGroupLength {
			out = append(out, name)
		}
	}
	return out, nil
}

// Recheck asks the directory whether it still accepts the user (the Rechecker of refreshes):
// the service account searches the entry of the user's UID attribute, then checks that the
// user filter still matches it under its current username (so a filter that leaves out
// disabled accounts refuses them). No entry, or a filter that no longer matches, is
// ErrUserRefused; a directory that cannot be asked is another error.
func (l *LDAP) Recheck(ctx context.Context, id Identity) error {
	if id.Kind != registry.KindLDAP || id.ProviderUID != l.cfg.UID || id.UpstreamSubject == "" {
		return ErrUserRefused
	}
	c, err := l.connect(ctx, true)
	if err != nil {
		return err
	}
	defer c.Close() //nolint:errcheck // nothing to do about it
	entry, err := l.findOne(c, uidFilter(l.cfg.UIDAttribute, id.UpstreamSubject))
	if errors.Is(err, ErrBadCredentials) {
		return ErrUserRefused
	}
	if err != nil {
		return err
	}
	username := entry.GetAttributeValue(l.cfg.UsernameAttribute)
	if !validLDAPUsername(username) {
		return ErrUserRefused
	}
	again, err := l.findOne(c, UserFilter(l.cfg.UserFilter, username, ""))
	if errors.Is(err, ErrBadCredentials) || (err == nil && (again.DN != entry.DN || attributeText(again, l.cfg.UIDAttribute) != id.UpstreamSubject)) {
		return ErrUserRefused
	}
	return err
}

// uidFilter finds the entry whose attribute has the value uid as attributeText gave it: as
// text, or, when uid is hex, as the bytes it encodes (a binary objectGUID). The caller checks
// that the entry found gives uid again.
func uidFilter(attr, uid string) string {
	f := "(" + attr + "=" + ldap.EscapeFilter(uid) + ")"
	raw, err := hex.DecodeString(uid)
	if err != nil || len(raw) == 0 {
		return f
	}
	var b strings.Builder
	for _, c := range raw {
		fmt.Fprintf(&b, `\%02x`, c)
	}
	return "(|" + f + "(" + attr + "=" + b.String() + "))"
}

// attributeText is the first value of the attribute: as is when it is printable UTF-8, else in
// hex (a binary objectGUID).
func attributeText(e *ldap.Entry, attr string) string {
	raw := e.GetRawAttributeValue(attr)
	if len(raw) == 0 {
		return ""
	}
	if s := string(raw); utf8.ValidString(s) && !strings.ContainsFunc(s, unicode.IsControl) {
		return s
	}
	return hex.EncodeToString(raw)
}

// truncated drops a claim longer than maxClaimLength.
func truncated(s string) string {
	if len(s) > maxClaimLength {
		return ""
	}
	return s
}

// isLDAPResult reports whether err is the server's answer (an LDAP result code), not a
// network or protocol failure.
func isLDAPResult(err error) bool {
	var le *ldap.Error
	return errors.As(err, &le) && le.ResultCode < ldap.ErrorNetwork
}

// ldapResultText is the result code's name of the server's answer, never its diagnostic
// message (which may echo what was sent).
func ldapResultText(err error) string {
	var le *ldap.Error
	if errors.As(err, &le) {
		return ldap.LDAPResultCodeMap[le.ResultCode]
	}
	return "error"
}

// LDAPSet keeps one LDAP per provider value, built again when the provider's UID, generation or
// bind credentials change. It is safe for concurrent use.
type LDAPSet struct {
	mu sync.Mutex
	m  map[string]*LDAP
}

// NewLDAPSet returns an empty set.
func NewLDAPSet() *LDAPSet { return &LDAPSet{m: map[string]*LDAP{}} }

// Get returns the LDAP of the provider value u.
func (s *LDAPSet) Get(u *registry.UpstreamLDAP) (*LDAP, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if l, ok := s.m[u.Name]; ok && l.cfg.UID == u.UID && l.cfg.Generation == u.Generation &&
		l.cfg.BindDN == u.BindDN && l.cfg.BindPassword == u.BindPassword {
		return l, nil
	}
	l, err := NewLDAP(u)
	if err != nil {
		return nil, err
	}
	s.m[u.Name] = l
	return l, nil
}

// LDAPProviders is the login flow's side of the LDAP providers (the browser flow's
// PasswordProviders): one LDAP per provider value, and the identities they sign in.
type LDAPProviders struct {
	set *LDAPSet
	ids *Identities
}

// NewLDAPProviders returns the LDAP providers' login side, remembering identities in ids.
func NewLDAPProviders(ids *Identities) *LDAPProviders {
	return &LDAPProviders{set: NewLDAPSet(), ids: ids}
}

// SignIn checks the username and password at the provider and remembers the user for the
// token endpoints.
func (p *LDAPProviders) SignIn(ctx context.Context, u *registry.UpstreamLDAP, username, password string) (*registry.User, error) {
	l, err := p.set.Get(u)
	if err != nil {
		return nil, err
	}
	id, err := l.Authenticate(ctx, username, password)
	if err != nil {
		return nil, err
	}
	return p.ids.Remember(ctx, id)
}

// LDAPSnapshots gives the current registry snapshot; *registry.Registry implements it.
type LDAPSnapshots interface {
	Snapshot() *registry.Snapshot
}

// LDAPRechecker is the Rechecker of LDAP users: it asks the provider the user signed in with,
// as the registry serves it now. A provider no longer served (deleted, or re-created with
// another UID) refuses the user.
type LDAPRechecker struct {
	registry LDAPSnapshots
	set      *LDAPSet
}

var _ Rechecker = (*LDAPRechecker)(nil)

// NewLDAPRechecker returns the Rechecker of LDAP users of the providers in reg.
func NewLDAPRechecker(reg LDAPSnapshots) *LDAPRechecker {
	return &LDAPRechecker{registry: reg, set: NewLDAPSet()}
}

// Recheck asks the user's provider whether it still accepts them (LDAP.Recheck).
func (r *LDAPRechecker) Recheck(ctx context.Context, id Identity) error {
	u, ok := r.registry.Snapshot().UpstreamLDAP(id.Provider)
	if !ok || u.UID != id.ProviderUID {
		return ErrUserRefused
	}
	l, err := r.set.Get(u)
	if err != nil {
		return err
	}
	return l.Recheck(ctx, id)
}
