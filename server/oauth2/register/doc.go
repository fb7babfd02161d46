// Package register is dynamic client registration: RFC 7591 registration at POST
// /oauth2/register and RFC 7592 client management at GET, PUT and DELETE
// /oauth2/register/{client_id}. The Endpoint parses, validates and authorizes; a
// ClientRegistrar stores (server/registration.Memory for the embedded default,
// controllers/registration for a cluster, where clients are OAuthClient resources).
//
// Decisions:
//   - Registration needs an initial access token (RFC 7591 3): Bearer, compared as SHA-256
//     against every configured hash in constant time. Config.Open (off by default) also
//     accepts requests without one; a token that is sent must still be valid. Anonymous
//     registrations cannot request client_credentials (anyone could mint tokens for
//     themselves).
//   - The initial access token file (ParseInitialTokens) has one token a line, optionally
//     followed by its policy: "TOKEN scopes=a,b grants=authorization_code,client_credentials",
//     then optionally a comment (from a word that starts with #). A line with the token alone
//     is the old format and keeps working. Unknown or repeated attributes, and a token listed
//     twice, are errors: a typo must never widen a policy.
//   - Scope policy (Policy.AllowedScopes, default openid profile email: signing in, nothing
//     that reaches an API): anonymous registrations may request only these, and so may
//     registrations with a token that has no scopes= list. A token's scopes= list replaces
//     them for its registrations (empty: none; * alone: every scope available to the
//     registrar's namespace, the behaviour before policies existed). The policy is applied
//     before scopes are looked up, so an anonymous caller cannot probe which scopes exist;
//     every scope must then still exist and be available to the registrar's namespace. The
//     refusal is invalid_client_metadata naming the scope and the allowed ones.
//   - Grant policy: a token's grants= list bounds the grant types of its registrations
//     (including the default authorization_code); without one, any registrable grant type.
//   - Updates (RFC 7592) are authorized by the client's registration access token, not by the
//     initial access token, so they are held to what anyone may get: an update may keep what
//     the client has, drop anything, add scopes of AllowedScopes and the refresh_token grant,
//     and nothing else (client_credentials, authorization_code or another scope needs a new
//     registration under its token's policy).
//   - Client names (shown on the consent page, where a look-alike could pass for a trusted
//     client): no control (Cc), format (Cf: bidi controls such as U+202E, U+200F, U+2066-2069,
//     zero-width characters), private-use (Co) or line/paragraph separator characters, nor the
//     other invisible ones (default ignorable code points such as U+034F and the Hangul
//     fillers, variation selectors, the Braille blank U+2800: hiddenInName); surrounding white
//     space is trimmed. A name equal to the display name or client ID of another client the
//     registry serves, in any namespace, is refused; equal means equal after NFKC
//     normalization, removal of hidden characters, case folding and collapsing white space
//     (NameKey), so "DEMO  web app", full-width letters and no-break spaces do not get through.
//     The check looks the key up in the registry's name index (registry.WithClientNameIndex,
//     set by main when registration is on: about a microsecond at 100k clients, where reading
//     every client took 0.3-0.6 s; BenchmarkCheckClientName), and scans without one.
//     Look-alikes across scripts (a Cyrillic "а" for a Latin "a") are not detected: the consent
//     page marks registered clients unverified and shows the redirect host for that. A client's
//     own name does not count against it in an update. Two registrations racing for one name
//     may both pass, with either registrar: the check reads the registry before the registrar
//     stores the client, outside any lock (in a cluster the window is wider: the registry
//     learns of a client through the informers).
//   - Rate limit (Policy.RateLimit): registrations (POST) per client address
//     (oauth2.ClientAddress: the connection's, or the trusted proxy's header; an IPv6 address
//     counts by its /64, oauth2.AddressKey) in fixed windows aligned to the clock, counted with
//     the leased store's Counters so every replica shares the count (one Incr round trip a
//     registration). Anonymous registrations and those with an initial access token are counted
//     and bounded separately; every authorized attempt counts, valid or not, so probing (client
//     names, say) is slowed too; a wrong initial access token is refused before it is counted
//     (the brute-force guard below counts it).
//     Past the limit: 429, temporarily_unavailable (RFC 6749 has no rate-limit code; this one
//     says to come back later) and Retry-After in seconds until the window ends. A fixed window
//     admits at most twice the limit across a window boundary; that is accepted for its one
//     round trip. RFC 7592 reads, updates and deletes need the client's registration access
//     token and are not counted here. A store error is answered like any other (FromStore:
//     503).
//   - Brute-force protection (Config.Throttles: an oauth2.Guard of kind "registration" with
//     oauth2.DefaultClientBruteForce's policy). A wrong or malformed initial access token, and
//     a wrong registration access token or a client ID that is not a registered client, are
//     failures of an identity ("initial-access-token" for every initial access token, the
//     path's client ID for RFC 7592) from a client address (an IPv6 address by its /64). The
//     5th failure of one identity from one address within 15 minutes blocks that identity for
//     that address, the 20th of any identity blocks the address, each for a back-off that
//     doubles with every further failure; a blocked attempt is answered 429
//     temporarily_unavailable with Retry-After (audited as rate_limited) whatever it sends, a
//     right token included, so a guess made while blocked teaches nothing. Failures of one
//     identity from every address only slow its further failures down. A blocked attempt at RFC
//     7592 is refused before the registrar is asked: in a cluster each registration access
//     token check is an uncached read from the API server. A client ID the registry does not
//     serve is not refused up front: a client reading itself right after its registration may
//     not be served yet (the informers lag, and another replica may answer). When the store
//     cannot be reached, presentations are not throttled (logged), so an outage of Redis does
//     not stop registration.
//   - Registration never makes a resource server: ClientMetadata has no introspection member
//     (a sent one is ignored like any unknown member), so registered clients cannot introspect
//     tokens unless an administrator declares it on the OAuthClient.
//   - Bodies are application/json only (else 415 invalid_request), at most MaxBodyBytes (413).
//     Unknown members are ignored and not stored; any member given twice, a known member of the
//     wrong JSON type, or a malformed body is invalid_client_metadata; null means omitted.
//   - Registrable: redirect_uris, post_logout_redirect_uris (RP-Initiated Logout 1.0 3.1;
//     checked as redirect URIs are, but a bad one is invalid_client_metadata: RFC 7591's
//     invalid_redirect_uri is about redirect_uris), token_endpoint_auth_method (client_secret_basic (default),
//     client_secret_post, none = public), grant_types (authorization_code (default),
//     refresh_token, client_credentials, urn:ietf:params:oauth:grant-type:device_code (a
//     registered client's confirmation page says it is unverified, as its consent page does),
//     urn:ietf:params:oauth:grant-type:token-exchange (confidential clients only; it is useless
//     until a ProtectedResource lists the client among its tokenExchange.allowedRequesters);
//     password never: ROPC is for first-party clients an
//     administrator declares), response_types (only code, exactly with authorization_code),
//     client_name (128 characters; see the name rules above), scope (each must exist as a Scope
//     available to the registrar's namespace, or be an OIDC standard scope). Rules are the
//     CRD's and controllers/convert's together: a public client cannot use client_credentials;
//     authorization_code needs a redirect URI; redirect URIs follow server/redirecturi, the one
//     rule the CRD and controllers/convert apply too; lists are deduplicated. Bad redirect URIs are
//     invalid_redirect_uri, the rest invalid_client_metadata.
//   - Also registrable: backchannel_logout_uri and backchannel_logout_session_required (OIDC
//     Back-Channel Logout 1.0 2.2; spec.backchannelLogoutURI and
//     backchannelLogoutSessionRequired). The URI must be https here: the server itself POSTs
//     logout tokens to it, and http on a loopback host would reach the server's own ports
//     (the OAuthClient allows loopback http for an administrator's development setups). The
//     namespace's OAuthClientPolicy redirectURIHosts bound its host like a redirect URI's.
//   - Also registrable: require_pushed_authorization_requests (RFC 9126 6;
//     spec.requirePushedAuthorizationRequests), a boolean.
//   - The client secret is returned once, in the 201; reads and updates answer without it
//     (client_secret_expires_at stays 0). The registration access token does not expire and is
//     not rotated; GET and PUT echo the one presented. A missing or wrong token, and a client ID
//     that does not exist or was not registered dynamically, are all 401 invalid_token with a
//     Bearer challenge (RFC 7592 3), so client IDs cannot be probed.
//   - PUT replaces the metadata (omitted members get their defaults), must carry the path's
//     client_id, and a client_secret it carries must be the current one; it cannot switch
//     between public and confidential. DELETE is 204. A registrar at its bound for the
//     registrant's kind (anonymous or initial token, counted separately: Registrant) is 403
//     access_denied. A registrar that cannot answer now (ErrRegistrarUnavailable: in a cluster,
//     the API server throttles or is unavailable) and a request that ended while the registrar
//     worked are 503 temporarily_unavailable; any other registrar error is 500 server_error.
package register
