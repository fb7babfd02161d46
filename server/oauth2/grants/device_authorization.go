package grants

import (
	"cmp"
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/latchkey-dev/latchkey/server/oauth2"
	"github.com/latchkey-dev/latchkey/server/store"
)

// Defaults of DeviceConfig.
const (
	DefaultDeviceCodeLifetime = 10 * time.Minute
	DefaultDevicePollInterval = 5 * time.Second
	// DeviceSlowDownStep is what each slow_down adds to a device code's interval (RFC 8628
	// 3.5).
	DeviceSlowDownStep = 5 * time.Second
	// maxUserCodeDraws bounds the new user codes drawn when one collides with a live one.
	maxUserCodeDraws = 4
)

// DeviceConfig configures the device authorization grant (RFC 8628).
type DeviceConfig struct {
	// Issuer is the server's public URL: verification_uri is Issuer + oauth2.DevicePath.
	Issuer string
	// CodeLifetime is how long a device code and its user code last; zero means 10 minutes.
	CodeLifetime time.Duration
	// Interval is the minimum time between polls a client is told, rounded up to whole
	// seconds; zero means 5 s.
	Interval time.Duration
}

// deviceGrantWriter stores device grants; store.Store implements it.
type deviceGrantWriter interface {
	PutDeviceGrant(ctx context.Context, h store.Hash, d store.DeviceGrant) error
}

// DeviceAuthorization is RFC 8628's device authorization endpoint (3.1, 3.2): a client that
// lists the device_code grant gets a device code to poll the token endpoint with and a user
// code for its user to enter on the verification page. It authenticates the client like the
// token endpoint (a public client sends client_id), applies its grant and scope policy and
// its rate limit.
type DeviceAuthorization struct {
	registry Registry
	auth     *oauth2.ClientAuth
	limits   RateLimits
	grants   deviceGrantWriter
	cfg      DeviceConfig
	maxBody  int64
	now      func() time.Time
}

// NewDeviceAuthorization returns the endpoint; zero fields of cfg take their defaults.
func NewDeviceAuthorization(reg Registry, auth *oauth2.ClientAuth, limits RateLimits, grants deviceGrantWriter,
	cfg DeviceConfig, maxBody int64, now func() time.Time,
) *DeviceAuthorization {
	cfg.CodeLifetime = cmp.Or(cfg.CodeLifetime, DefaultDeviceCodeLifetime)
	// The response says the interval in whole seconds: the store enforces the same.
	cfg.Interval = cmp.Or(cfg.Interval, DefaultDevicePollInterval)
	cfg.Interval = (cfg.Interval + time.Second - 1).Truncate(time.Second)
	cfg.Issuer = strings.TrimSuffix(cfg.Issuer, "/")
	return &DeviceAuthorization{registry: reg, auth: auth, limits: limits, grants: grants, cfg: cfg, maxBody: maxBody, now: now}
}

// Mount adds the endpoint to the mux.
func (d *DeviceAuthorization) Mount(m *oauth2.Mux) {
	m.Handle(oauth2.DeviceAuthorizationPath, http.MethodPost, d)
}

// VerificationURI is the verification page's URL (verification_uri).
func (d *DeviceAuthorization) VerificationURI() string { return d.cfg.Issuer + oauth2.DevicePath }

// deviceAuthorizationResponse is RFC 8628 3.2's response.
type deviceAuthorizationResponse struct {
	DeviceCode              string `json:"device_code"`
	UserCode                string `json:"user_code"`
	VerificationURI         string `json:"verification_uri"`
	VerificationURIComplete string `json:"verification_uri_complete"`
	ExpiresIn               int64  `json:"expires_in"`
	Interval                int64  `json:"interval"`
}

func (d *DeviceAuthorization) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	req, err := ParseDeviceAuthorizationRequest(r, d.maxBody)
	if err != nil {
		oauth2.WriteError(w, r, err)
		return
	}
	resp, err := d.authorize(r.Context(), req)
	if err != nil {
		oauth2.WriteError(w, r, oauth2.FromStore(err))
		return
	}
	oauth2.WriteJSON(w, r, http.StatusOK, resp)
}

// ParseDeviceAuthorizationRequest reads a device authorization request (RFC 8628 3.1): the
// token endpoint's bodies and client authentication, and scope. A grant_type is refused, so
// that a token request sent here by mistake is not read as something else.
func ParseDeviceAuthorizationRequest(r *http.Request, maxBody int64) (*oauth2.TokenRequest, error) {
	req, err := oauth2.ParseClientRequest(r, maxBody)
	if err != nil {
		return nil, err
	}
	if req.GrantType != "" {
		return nil, oauth2.InvalidRequest("The device authorization endpoint takes no grant_type; poll the token endpoint with it.")
	}
	return req, nil
}

// authorize authenticates the client, checks its grant, rate limit and scopes and stores a
// new device grant.
func (d *DeviceAuthorization) authorize(ctx context.Context, req *oauth2.TokenRequest) (*deviceAuthorizationResponse, error) {
	snap := d.registry.Snapshot()
	client, err := d.auth.Authenticate(ctx, snap, req)
	if err != nil {
		return nil, err
	}
	if !client.AllowsGrant(oauth2.GrantDeviceCode) {
		return nil, oauth2.ErrUnauthorizedClient.WithDescription("The client is not allowed the device_code grant.")
	}
	if err := d.limits.take(ctx, client); err != nil {
		return nil, err
	}
	scopes, err := oauth2.ResolveScopes(ctx, snap, client, req.Scope)
	if err != nil {
		return nil, err
	}
	deviceCode, err := oauth2.NewSecret()
	if err != nil {
		return nil, oauth2.ErrServerError.WithCause(err)
	}
	expires := d.now().Add(d.cfg.CodeLifetime)
	for range maxUserCodeDraws {
		userCode, err := oauth2.NewUserCode()
		if err != nil {
			return nil, oauth2.ErrServerError.WithCause(err)
		}
		normal, _ := oauth2.NormalizeUserCode(userCode)
		err = d.grants.PutDeviceGrant(ctx, store.HashOf(deviceCode), store.DeviceGrant{
			ClientID: client.ID, Scopes: scopes, UserCode: oauth2.UserCodeHash(normal),
			Interval: d.cfg.Interval, ExpiresAt: expires,
		})
		if errors.Is(err, store.ErrConflict) {
			continue // a live grant has this user code: draw another
		}
		if err != nil {
			return nil, err
		}
		oauth2.Audit(ctx, oauth2.AuditEvent{Event: oauth2.AuditDeviceAuthorizationStarted, ClientID: client.ID,
			GrantType: oauth2.GrantDeviceCode, AuthMethod: oauth2.AuthenticatedMethod(client, req), Scopes: scopes,
			TokenRef: oauth2.TokenRef(deviceCode)})
		verify := d.VerificationURI()
		return &deviceAuthorizationResponse{
			DeviceCode: deviceCode, UserCode: userCode, VerificationURI: verify,
			VerificationURIComplete: verify + "?user_code=" + userCode,
			ExpiresIn:               int64(d.cfg.CodeLifetime / time.Second), Interval: int64(d.cfg.Interval / time.Second),
		}, nil
	}
	return nil, oauth2.ErrServerError.WithDescription("No free user code could be drawn.")
}
