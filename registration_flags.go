package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	ctrlreg "github.com/latchkey-dev/latchkey/controllers/registration"
	"github.com/latchkey-dev/latchkey/server/oauth2/handler"
	"github.com/latchkey-dev/latchkey/server/oauth2/register"
	"github.com/latchkey-dev/latchkey/server/registration"
)

// registrationOptions are the --registration-* flags of dynamic client registration.
type registrationOptions struct {
	initialTokenFile       string
	open                   bool
	namespace              string
	maxClients             int
	maxInitialTokenClients int
	allowedScopes          string
	rateLimit              int
	initialTokenRateLimit  int
	rateLimitWindow        time.Duration
}

func (r *registrationOptions) enabled() bool { return r.open || r.initialTokenFile != "" }

func (r *registrationOptions) bind(fs *flag.FlagSet) {
	fs.StringVar(&r.initialTokenFile, "registration-initial-token-file", "", "enable dynamic client registration (RFC 7591) with the initial access tokens in this file, one per line, each optionally followed by scopes=a,b (or scopes=*) and grants=x,y")
	fs.BoolVar(&r.open, "registration-open", false, "enable dynamic client registration without an initial access token (such clients cannot use client_credentials and get only --registration-allowed-scopes)")
	fs.StringVar(&r.namespace, "registration-namespace", "", "namespace of registered OAuthClients (default: --namespace)")
	fs.IntVar(&r.maxClients, "registration-max-clients", 1000, "most clients registered without an initial access token (0: no bound)")
	fs.IntVar(&r.maxInitialTokenClients, "registration-max-initial-token-clients", 0, "most clients registered with an initial access token, counted apart from the anonymous ones (0: no bound)")
	fs.StringVar(&r.allowedScopes, "registration-allowed-scopes", strings.Join(register.DefaultAllowedScopes(), " "), "scopes (space- or comma-separated) that anonymous registrations, and initial access tokens without scopes=, may request")
	fs.IntVar(&r.rateLimit, "registration-rate-limit", 20, "anonymous registrations per client address per --registration-rate-limit-window (0: no limit)")
	fs.IntVar(&r.initialTokenRateLimit, "registration-initial-token-rate-limit", 200, "registrations with an initial access token per client address per --registration-rate-limit-window (0: no limit)")
	fs.DurationVar(&r.rateLimitWindow, "registration-rate-limit-window", time.Hour, "window of the registration rate limits")
}

func (r *registrationOptions) validate() error {
	if r.maxClients < 0 || r.maxInitialTokenClients < 0 || r.rateLimit < 0 || r.initialTokenRateLimit < 0 {
		return errors.New("--registration-max-* and --registration-*rate-limit must not be negative")
	}
	if r.rateLimitWindow <= 0 {
		return errors.New("--registration-rate-limit-window must be positive")
	}
	return nil
}

// apply sets the registration fields of the handler config (all but the registrar, which
// depends on the mode).
func (r *registrationOptions) apply(cfg *handler.Config) error {
	cfg.RegistrationOpen = r.open
	cfg.RegistrationPolicy = register.Policy{
		// Not nil: an empty flag allows no scope at all.
		AllowedScopes: append([]string{}, strings.FieldsFunc(r.allowedScopes, func(c rune) bool { return c == ' ' || c == ',' })...),
		RateLimit: register.RateLimit{
			Anonymous: r.rateLimit, InitialToken: r.initialTokenRateLimit, Window: r.rateLimitWindow,
		},
	}
	if r.initialTokenFile == "" {
		return nil
	}
	data, err := os.ReadFile(r.initialTokenFile)
	if err != nil {
		return fmt.Errorf("--registration-initial-token-file: %w", err)
	}
	if cfg.RegistrationInitialTokens, err = register.ParseInitialTokens(data); err != nil {
		return fmt.Errorf("--registration-initial-token-file: %w", err)
	}
	return nil
}

// memoryOptions configure the embedded mode's registrar.
func (r *registrationOptions) memoryOptions() registration.MemoryOptions {
	return registration.MemoryOptions{
		Namespace: r.namespace, MaxClients: r.maxClients, MaxInitialTokenClients: r.maxInitialTokenClients,
	}
}

// clusterOptions configure the Kubernetes registrar's bounds.
func (r *registrationOptions) clusterOptions() []ctrlreg.Option {
	return []ctrlreg.Option{ctrlreg.WithMaxClients(r.maxClients), ctrlreg.WithMaxInitialTokenClients(r.maxInitialTokenClients)}
}
