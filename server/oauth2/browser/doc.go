// Package browser is the browser side of the authorization code flow: the authorization
// endpoint (RFC 6749 4.1, RFC 7636, OpenID Connect Core 3.1.2), the login and consent pages,
// the login (OP) session, RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0), the
// account page, the device verification page (RFC 8628 3.3), CSRF protection and the pages'
// templates and stylesheet. Flow is mounted on the route table (oauth2.Mux): GET and POST
// /oauth2/authorize (alias /oauth/authorize), GET and POST /oauth2/login, /oauth2/consent,
// /oauth2/logout, /oauth2/account and /oauth2/device (device.go), GET
// /oauth2/static/latchkey.css. Codes are
// exchanged by server/oauth2/grants (authorization_code); passwords are checked by
// server/userauth, the one authenticator the password grant uses too.
//
// Decisions:
//   - The request is parsed once (AuthorizeRequest); a parameter given twice is an error. A
//     problem with client_id or redirect_uri (unknown client, a redirect URI that is not one of
//     the client's, repeated or badly encoded) is a 400 HTML page and never a redirect; every
//     other error is a 303 to the redirect URI with error, error_description, state (verbatim,
//     when sent) and iss (RFC 9207). A redirect URI matches a registered one byte for byte,
//     except that one registered as http on a loopback host matches the same URI with any port
//     (RFC 8252 7.3, redirecturi.Registered). redirect_uri may be omitted when the client has
//     exactly one, except in an OpenID Connect request (scope openid). The redirect URI's own
//     query is kept. response_type is code only (else unsupported_response_type), response_mode
//     query only; request, request_uri and registration are *_not_supported.
//   - PKCE (oauth2.CheckCodeChallenge): public clients always need it; policy RequiredS256 (the
//     default) takes S256 only, Required also plain, Optional lets confidential clients omit it
//     (and accepts plain, which is no weaker than none). A challenge without a method is plain
//     (RFC 7636 4.3).
//   - Codes: oauth2.NewSecret (32 random bytes, base64url), stored by hash for the client's
//     code lifetime (10 min by default) with a new family ID (token.NewFamilyID).
//   - dpop_jkt (RFC 9449 10) binds the code to a DPoP key (store.Code.DPoPThumbprint; the
//     authorization_code grant needs a proof of it, else invalid_grant); so does a DPoP proof
//     sent with a pushed request (verified with htu <issuer>/oauth2/par, nonces not required,
//     a different dpop_jkt is invalid_dpop_proof). A client whose spec.dpop is Disabled may not
//     send dpop_jkt (invalid_request: its proofs are ignored, so the code would be unusable),
//     and its proof at PAR is ignored, as at the token endpoint.
//   - State between pages lives in the store only: the pending request (10 min) under the hash
//     of a random ID that the pages carry, the session (8 h, not sliding) under the hash of its
//     cookie, remembered consents (90 days, per subject and client, the union of allowed
//     scopes). Sessions and consents name the user by subject, never by username. The session
//     cookie is __Host-latchkey-session (Secure) for an https issuer, else latchkey-session;
//     HttpOnly, SameSite=Lax, Path=/. A login always gets a new session ID.
//   - CSRF (csrf.go): http.CrossOriginProtection refuses cross-site POSTs; each pending request
//     has a synchronizer token (compared in constant time) and is bound to the browser by the
//     hash of a latchkey-csrf cookie, so a request started elsewhere cannot be completed (login
//     CSRF); pages of another browser's request are not shown. Failures are a 403 page.
//   - Login: the userauth Authenticator decides (unknown users, users without a hash and
//     disabled users fail like a wrong password, "Incorrect username or password."; a locked
//     username or client address is 429 with its own message; both after the failure delay).
//     A success is logged and audited here (login_succeeded); failures by the authenticator.
//   - Consent: Skip never asks, Always always asks, Remember (the default) asks when a
//     requested scope was not allowed before. prompt=consent always asks (even under Skip).
//     Deny is access_denied. Scope descriptions: oauth2.ScopeDescription. prompt=none answers
//     login_required or consent_required instead of a page; prompt=login, select_account (there
//     is no account chooser) and a session older than max_age (max_age=0 always) show the login
//     page. The page shows the host (or scheme, for a native app) the answer goes to in a box of
//     its own under the heading, for every client. A dynamically registered client
//     (registry.Client.Registered: the OAuthClient label, or the embedded registrar) gets an
//     "Unverified app" note saying that nobody checked its self-chosen name and naming that
//     host again: its name alone must never be what the user trusts.
//   - Pages: html/template, no JavaScript, one embedded stylesheet; headers
//     Content-Security-Policy "default-src 'none'; style-src 'self'; form-action 'self'
//     <redirect origin>; frame-ancestors 'none'", X-Frame-Options DENY, Cache-Control no-store,
//     Referrer-Policy no-referrer. Chromium applies form-action to the redirects after a form
//     POST, so the login and consent pages add the client's redirect origin (or scheme, for a
//     native app or an IPv6 literal) to form-action: without it the 303 to the client is
//     blocked. Links and form actions are relative ("../oauth2/..."), so the pages work under a
//     path prefix.
//   - OP sessions (session.go, index.go): a session has an OP session ID (sid, 16 random
//     bytes, public: it is in the ID tokens and in the access tokens of its grants, and travels
//     through the code and refresh records) apart from its cookie's secret, and a CSRF token of
//     its own forms. A login of the same user continues the browser's OP session (same sid,
//     new cookie, its grants re-leased for the new lifetime); a login of another user ends it
//     (replaced_by_login). The store's lists (store.Lists) record per user the sessions, the
//     remembered consents and the grants (refresh token families, listed when their code is
//     issued), and per OP session the grants issued through it with their client: the clients
//     that took part. Each entry is leased as long as what it names; a list holds at most
//     store.MaxListEntries.
//   - Ending a session (RP-initiated logout, the account page, a login of another user):
//     its record and list entry go, the grants of the clients with LogoutRevokesRefreshTokens
//     are revoked (store.RevokeFamily, until their longest lifetime) and cut off for the
//     session (store.CutOffGrants: also those the full list could not hold), session_ended is
//     audited, and the SessionEndNotifier (optional, for back-channel logout) hears the sid,
//     the subject and the clients that took part; its failure is logged, within a 5 s bound, and
//     never changes the answer. Requests that end one session at the same time (at one
//     replica or several) each drop it, but only the first (a store.Counters counter of the
//     sid, kept 10 minutes) audits the end and notifies: each client gets one logout token.
//   - Withdrawing a consent (account page) forgets it, records a cutoff of the client's grants
//     for the user (store.CutOffGrants), then revokes the listed ones. Lists are leased for one
//     refresh lifetime from the authorization while refresh tokens slide, and the password
//     grant's families are never listed: the cutoff ends those at their next rotation (a
//     family that starts later, after a new consent, is not affected). A cutoff is leased for
//     oauth2.Lifetimes.CutoffEnd: the longest refresh lifetime a client can set.
//   - Logout (logout.go): the request is parsed once (LogoutRequest; a repeated parameter is
//     invalid_request). Every problem is a 400 page, never a redirect: an id_token_hint that
//     token.Verifier.VerifyIDTokenHint refuses (alg none, another issuer, unknown key, not typ
//     JWT; an expired one is accepted), a client_id other than the hint's audience, a
//     post_logout_redirect_uri not registered for the client (matched as redirect URIs are,
//     redirecturi.Registered) or sent without a known client (one answer for an unknown client
//     and an unregistered URI; an unknown client_id alone is no client, so the endpoint tells
//     nobody which client IDs exist). A valid hint with sid ends
//     that session (found in the hint's user's list, so the cookie is not needed: a cross-site
//     POST does not send it) only when the hint's client took part in it, then redirects (303)
//     with state. Without a hint, or when the browser is signed in to another session, the user
//     confirms on a page (its form posts back with decision and the session's CSRF token; the
//     cross-origin check applies to that POST only, since RP-initiated logout itself is a
//     cross-site request). ui_locales is read and ignored (English only).
//   - Account page (account.go): behind the session (none: the login page, with a pending
//     request that has no client and returns to the account page). It lists consents, sessions
//     and grants; "Withdraw access" forgets the consent and revokes the client's grants for the
//     user; "End session" ends one of the user's own sessions (a sid not in the user's list is
//     refused). Its POSTs pass http.CrossOriginProtection and carry the session's CSRF token
//     (constant-time compare); a session from before sessions had one signs in again.
//   - Rate limits: per client address, the logout endpoint and the account page's POSTs each
//     take from a store.TakeRate bucket (60 a minute, burst 60; a 429 page with Retry-After).
//   - Device verification (device.go): GET /oauth2/device shows a code form (?user_code=, the
//     verification_uri_complete, fills it in; the user still submits it, so a link starts
//     nothing). Its CSRF token is derived from the browser's binding cookie (no pending request
//     exists yet), with http.CrossOriginProtection in front. An entered code is normalised
//     (oauth2.NormalizeUserCode: case, dashes, spaces); one that cannot be a code is not
//     counted; a well-formed one that matches no pending device grant counts a failure on the
//     address and the global throttle keys (DeviceVerification: 10 per address, 1000 in all per
//     hour by default, then exponential blocks, 429 with Retry-After), and a blocked entry is
//     refused even with the right code. A right code does not reset the counts (anyone can get
//     fresh codes of a public client). A right code becomes a pending request (UserCode set,
//     no redirect URI, ForceConsent) bound to the browser like an authorization request, and
//     goes through the same login page (or the current session) to the consent page, which
//     then shows the code to compare with the device's and is asked every time, whatever the
//     client's consent policy (remote phishing, RFC 8628 5.4); nothing is remembered. Allow or
//     Deny decides the device grant in the store once (store.DecideDeviceGrant), which also
//     ends its user code, and ends on a page of its own (no redirect). The pending request
//     holds the code's display form for the confirmation page: it alone grants nothing, and
//     the store keys the device grant by its hash only.
//   - Upstream identity providers (upstream.go; the provider side is server/upstream behind
//     IdentityProviders): the login page lists the providers the client allows
//     (registry.Client.AllowsIdentityProvider) as links to /oauth2/upstream-start (GET: it only
//     starts a flow for the browser's own pending request, and a link needs no form-action
//     entry for the upstream's origin), and the password form when any User exists; with one
//     provider and no User it starts that provider's flow at once. The start records a
//     one-time state (with nonce and PKCE verifier) for the request lifetime, bound to the
//     browser cookie and to the provider's UID. /oauth2/upstream-callback reads the state,
//     checks the browser, then takes it (so a party that saw the URL can neither use nor burn
//     it), refuses a response whose iss (RFC 9207) is not the provider's issuer (mix-up), and
//     completes the login as a password does (completeLogin). Upstream errors, bad
//     or replayed states and refusals are error pages (the upstream's error code only when it
//     is a registered one), logged and audited as login_failed with the reason. Both paths
//     take from the per-address page rate limit. Paths are one segment under /oauth2/ since
//     the pages' redirects are relative.
//   - GitHub providers (github.go, behind GitHubSignIn) are listed beside the OIDC ones, by
//     display name; their links add kind=github (names of different kinds may be equal). Their
//     flow uses the same state record (with the kind, no nonce) and the same callback, which
//     dispatches on the state's kind; a GitHub response carrying iss is refused (GitHub sends
//     none).
//   - Store failures are mapped by oauth2.FromStore: temporarily_unavailable is a redirect with
//     that error (or a "try again in a moment" page), anything else server_error.
//
// It never logs a password, code or token.
package browser
