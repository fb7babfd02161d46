package upstream_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/latchkey-dev/latchkey/internal/harness"
	"github.com/latchkey-dev/latchkey/internal/harness/oidcissuer"
	"github.com/latchkey-dev/latchkey/server/registry"
	"github.com/latchkey-dev/latchkey/server/upstream"
)

// ldapDirectory is a slapd with a service account, two users and a group.
type ldapDirectory struct {
	slapd           *harness.Slapd
	aliceDN, bobDN  string
	provider        registry.UpstreamLDAP
	serviceDN       string
	servicePassword string
}

func newLDAPDirectory(t *testing.T) *ldapDirectory {
	t.Helper()
	s := harness.NewSlapd(t)
	d := &ldapDirectory{slapd: s, serviceDN: "uid=latchkey,ou=people," + harness.SlapdSuffix, servicePassword: "service-pw"}
	_, err := s.AddUser("latchkey", d.servicePassword, "latchkey@example.com", "Latchkey")
	require.NoError(t, err)
	d.aliceDN, err = s.AddUser("alice", "alice-pw", "alice@example.com", "Alice Liddell")
	require.NoError(t, err)
	d.bobDN, err = s.AddUser("bob", "bob-pw", "bob@example.com", "Bob")
	require.NoError(t, err)
	require.NoError(t, s.AddGroup("admins", d.aliceDN))
	require.NoError(t, s.AddGroup("staff", d.aliceDN, d.bobDN))
	d.provider = registry.UpstreamLDAP{
		Name: "corp", UID: "11111111-2222-3333-4444-555555555555", Generation: 1, DisplayName: "Corp",
		Host: s.Addr(), StartTLS: true, CABundle: s.CABundle(), BindDN: d.serviceDN, BindPassword: d.servicePassword,
		UserBase: "ou=people," + harness.SlapdSuffix, UserFilter: upstream.DefaultLDAPUserFilter,
		UsernameAttribute: "uid", UIDAttribute: "entryUUID", EmailAttribute: "mail", NameAttribute: "cn",
		GroupBase: "ou=groups," + harness.SlapdSuffix, GroupFilter: upstream.DefaultLDAPGroupFilter, GroupNameAttribute: "cn",
	}
	return d
}

func (d *ldapDirectory) ldap(t *testing.T, edit func(*registry.UpstreamLDAP)) *upstream.LDAP {
	t.Helper()
	p := d.provider
	if edit != nil {
		edit(&p)
	}
	l, err := upstream.NewLDAP(&p)
	require.NoError(t, err)
	return l
}

func ctx(t *testing.T) context.Context {
	t.Helper()
	c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return c
}

func TestLDAPSignInAndRecheckOnSlapd(t *testing.T) {
	d := newLDAPDirectory(t)
	l := d.ldap(t, nil)

	t.Run("the right password signs the user in with their groups, mail and a subject from entryUUID", func(t *testing.T) {
		id, err := l.Authenticate(ctx(t), "alice", "alice-pw")
		require.NoError(t, err)
		assert.Equal(t, registry.KindLDAP, id.Kind)
		assert.Equal(t, "corp", id.Provider)
		assert.Equal(t, d.provider.UID, id.ProviderUID)
		assert.Len(t, id.UpstreamSubject, 36, "an entryUUID")
		assert.Equal(t, upstream.Subject(d.provider.UID, id.UpstreamSubject), id.Subject)
		assert.Equal(t, "alice", id.Username)
		assert.Equal(t, "alice@example.com", id.Email)
		assert.True(t, id.EmailVerified)
		assert.Equal(t, "Alice Liddell", id.Name)
		assert.ElementsMatch(t, []string{"admins", "staff"}, id.Groups)

		again, err := l.Authenticate(ctx(t), "alice", "alice-pw")
		require.NoError(t, err)
		assert.Equal(t, id.Subject, again.Subject, "the subject is stable")
		bob, err := l.Authenticate(ctx(t), "bob", "bob-pw")
		require.NoError(t, err)
		assert.NotEqual(t, id.Subject, bob.Subject)
		assert.Equal(t, []string{"staff"}, bob.Groups)
	})

	t.Run("a wrong password, an unknown user and an empty password are the same error", func(t *testing.T) {
		for _, c := range []struct{ user, pw string }{
			{"alice", "bob-pw"}, {"alice", "alice-pw "}, {"nobody", "alice-pw"}, {"alice", ""}, {"", "alice-pw"},
		} {
			_, err := l.Authenticate(ctx(t), c.user, c.pw)
			assert.ErrorIs(t, err, upstream.ErrBadCredentials, "%q / %q", c.user, c.pw)
		}
	})

	t.Run("LDAP injection in the username never matches another user", func(t *testing.T) {
		for _, user := range []string{
			"*", "*)(uid=*", "admin)(|(uid=*", "alice)(uid=*", "a*", "*lice", "alice\x00", "alice\x00)(uid=*",
			"alice)(|(objectClass=*)", `alice\2a`, "(uid=alice)", "alice))(|(uid=*",
		} {
			// Every password of the directory is tried: none may sign in under a forged name.
			for _, pw := range []string{"alice-pw", "bob-pw", d.servicePassword} {
				_, err := l.Authenticate(ctx(t), user, pw)
				assert.ErrorIs(t, err, upstream.ErrBadCredentials, "%q", user)
			}
		}
	})

	t.Run("a filter that matches several entries refuses the sign-in", func(t *testing.T) {
		wide := d.ldap(t, func(p *registry.UpstreamLDAP) { p.UserFilter = "(|(uid={})(objectClass=inetOrgPerson))" })
		_, err := wide.Authenticate(ctx(t), "alice", "alice-pw")
		assert.ErrorIs(t, err, upstream.ErrBadCredentials)
	})

	t.Run("Recheck accepts a user still in the directory and refuses one deleted", func(t *testing.T) {
		carol, err := d.slapd.AddUser("carol", "carol-pw", "carol@example.com", "Carol")
		require.NoError(t, err)
		id, err := l.Authenticate(ctx(t), "carol", "carol-pw")
		require.NoError(t, err)
		require.NoError(t, l.Recheck(ctx(t), id))

		rc := upstream.NewLDAPRechecker(registryWith(d.provider))
		require.NoError(t, rc.Recheck(ctx(t), id))

		require.NoError(t, d.slapd.Delete(carol))
		assert.ErrorIs(t, l.Recheck(ctx(t), id), upstream.ErrUserRefused)
		assert.ErrorIs(t, rc.Recheck(ctx(t), id), upstream.ErrUserRefused)
	})

	t.Run("Recheck refuses a user the user filter leaves out now (disabled)", func(t *testing.T) {
		id, err := l.Authenticate(ctx(t), "bob", "bob-pw")
		require.NoError(t, err)
		strict := d.ldap(t, func(p *registry.UpstreamLDAP) { p.UserFilter = "(&(uid={})(!(description=disabled)))" })
		require.NoError(t, strict.Recheck(ctx(t), id))
		require.NoError(t, d.slapd.Modify("dn: "+d.bobDN+"\nchangetype: modify\nadd: description\ndescription: disabled\n"))
		assert.ErrorIs(t, strict.Recheck(ctx(t), id), upstream.ErrUserRefused)
		_, err = strict.Authenticate(ctx(t), "bob", "bob-pw")
		assert.ErrorIs(t, err, upstream.ErrBadCredentials)
	})

	t.Run("Recheck refuses a user of a provider deleted or re-created", func(t *testing.T) {
		id, err := l.Authenticate(ctx(t), "alice", "alice-pw")
		require.NoError(t, err)
		other := d.provider
		other.UID = "re-created"
		assert.ErrorIs(t, upstream.NewLDAPRechecker(registryWith(other)).Recheck(ctx(t), id), upstream.ErrUserRefused)
		assert.ErrorIs(t, upstream.NewLDAPRechecker(registry.New()).Recheck(ctx(t), id), upstream.ErrUserRefused)
	})
}

func TestLDAPProbeOnSlapd(t *testing.T) {
	d := newLDAPDirectory(t)

	t.Run("the right CA and bind password pass", func(t *testing.T) {
		assert.NoError(t, d.ldap(t, nil).Probe(ctx(t)))
	})
	t.Run("a wrong bind password is a refused service bind", func(t *testing.T) {
		err := d.ldap(t, func(p *registry.UpstreamLDAP) { p.BindPassword = "wrong" }).Probe(ctx(t))
		assert.ErrorIs(t, err, upstream.ErrServiceBind)
		assert.NotContains(t, err.Error(), "wrong")
	})
	t.Run("a CA that did not sign the server's certificate fails the connection", func(t *testing.T) {
		err := d.ldap(t, func(p *registry.UpstreamLDAP) { p.CABundle = []byte(oidcissuer.UnrelatedCABundle(t)) }).Probe(ctx(t))
		assert.ErrorIs(t, err, upstream.ErrUnavailable)
		assert.Contains(t, err.Error(), "certificate")
	})
	t.Run("LDAPS against a plain LDAP port fails the connection", func(t *testing.T) {
		err := d.ldap(t, func(p *registry.UpstreamLDAP) { p.StartTLS = false }).Probe(ctx(t))
		assert.ErrorIs(t, err, upstream.ErrUnavailable)
	})
	t.Run("a wrong bind password refuses every sign-in without a bad-credentials answer", func(t *testing.T) {
		_, err := d.ldap(t, func(p *registry.UpstreamLDAP) { p.BindPassword = "wrong" }).Authenticate(ctx(t), "alice", "alice-pw")
		assert.ErrorIs(t, err, upstream.ErrServiceBind)
	})
}

// registryWith is a registry serving the LDAP provider.
func registryWith(p registry.UpstreamLDAP) *registry.Registry {
	r := registry.New()
	r.PutUpstreamLDAP(p)
	return r
}

func TestUserFilterEscapesTheUsername(t *testing.T) {
	tests := []struct{ name, filter, username, dn, want string }{
		{"a plain username is kept", "(uid={})", "alice", "", "(uid=alice)"},
		{"filter syntax is escaped", "(uid={})", "*)(uid=*", "", `(uid=\2a\29\28uid=\2a)`},
		{"a NUL byte is escaped", "(uid={})", "a\x00b", "", `(uid=a\00b)`},
		{"the DN and the username are both escaped", "(&(member={dn})(memberUid={}))", "a*", "uid=a*,dc=x", `(&(member=uid=a\2a,dc=x)(memberUid=a\2a))`},
		{"a placeholder in the username is not expanded again", "(uid={})", "{dn}", "cn=admin", "(uid={dn})"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, upstream.UserFilter(tt.filter, tt.username, tt.dn))
		})
	}
}

func FuzzUserFilter(f *testing.F) {
	for _, s := range []string{"alice", "*)(uid=*", "admin)(|(uid=*", "\x00", "\\", "{}", "{dn}", "é", "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, username string) {
		for _, filter := range []string{upstream.DefaultLDAPUserFilter, "(&(objectClass=person)(|(uid={})(mail={})))"} {
			built := upstream.UserFilter(filter, username, "")
			if _, err := ldap.CompileFilter(built); err != nil {
				t.Fatalf("filter %q of username %q does not parse: %v", built, username, err)
			}
			// Only the escaped form appears: the filter's syntax (parentheses, wildcards) is
			// the template's alone, and no NUL or raw non-ASCII byte gets in.
			for _, c := range []string{"(", ")", "*", "\x00"} {
				if strings.Count(built, c) != strings.Count(filter, c) {
					t.Fatalf("filter %q of username %q has %q outside the template", built, username, c)
				}
			}
			if strings.ContainsFunc(built, func(r rune) bool { return r > 0x7f }) {
				t.Fatalf("filter %q of username %q holds an unescaped byte", built, username)
			}
		}
	})
}
