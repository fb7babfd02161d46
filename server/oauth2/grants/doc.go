// Package grants is the token endpoint (RFC 6749 3.2) and its grants, one file each behind the
// Grant interface: client_credentials, authorization_code (with PKCE), refresh_token (with
// rotation), password, device_code (RFC 8628) and token exchange (RFC 8693,
// token_exchange.go), with the device authorization endpoint (device_authorization.go). TokenSet issues the tokens of the grants that act for a user.
//
// A token request goes through one dispatcher (Endpoint) that runs the shared steps in order,
// so that no grant can forget one: parse the request once (oauth2.ParseTokenRequest), pick the
// Grant by grant_type, authenticate the client (oauth2.ClientAuth, under brute-force
// protection), check that the client may use the grant, take from the client's rate limit
// (RateLimits: its spec.rateLimit, else the server's default; per address for a public
// client; 429 with Retry-After past it), apply the scope policy (oauth2.ResolveScopes), call the grant, map
// its error (oauth2.FromStore), count and audit the response under the event the grant names
// (IssuedEvent), write it. Each grant gets the narrow dependencies it uses (an interface of the
// store methods it calls, the TokenSet, the user authenticator), never a shared service.
//
// Decisions:
//   - DPoP (RFC 9449, dpop.go): after client authentication the client's spec.dpop decides:
//     Disabled ignores the DPoP header, Required refuses a request without a valid proof
//     (invalid_dpop_proof), Optional uses a proof when sent. A valid proof binds the access
//     token (cnf.jkt, token_type DPoP) and, for a public client, a new family's refresh tokens:
//     a refresh of a bound family needs a proof of the same key (checked before the store may
//     report reuse, so a party without the key cannot revoke the family). Confidential
//     clients' refresh tokens are not bound. use_dpop_nonce comes with DPoP-Nonce. A code
//     bound to a key at the authorization request (dpop_jkt, or a proof at PAR; RFC 9449 10)
//     needs a proof of that key: otherwise invalid_grant, and the code is used up like after
//     any failed exchange.
//   - A token request that arrives before the signing keys are loaded (or for an algorithm
//     with no active key) is temporarily_unavailable (503), not server_error: a retry will work.
//   - Public clients may use every grant but client_credentials (ConfidentialOnly).
//   - User grants (TokenSet): sub is registry.User.Subject, never the username. A grant has a
//     family ID (token.NewFamilyID): a new one for a password login, the code's for
//     authorization_code, the presented token's for a refresh. Access tokens of users carry it
//     as latchkey_family, so revoking the family (code replay, refresh token reuse, revocation
//     of a refresh token, a logout of a client with revokeRefreshTokens) also revokes every
//     access token issued from the grant. A grant started in an OP session (the code's
//     SessionID, kept in every refresh record of the family) puts it in sid of its ID and
//     access tokens; password and client_credentials tokens have no sid. ID tokens only when openid is granted; claims by scope per
//     oauth2.ReleasedClaims.
//   - Refresh tokens: issued by a user grant iff the client lists the refresh_token grant type
//     (offline_access is accepted but neither required nor sufficient); never for
//     client_credentials. Shape and family prefix: token.NewRefreshToken; only
//     store.HashOf(token) is stored. Lifetime: the client's, else the server's (30 d), from each
//     rotation (sliding). Every use rotates (store.RotateRefresh), signing first and storing
//     last so a signing failure does not use up a rotation (nor, from a known record, a code). A rotated token presented again is
//     handed to store.ReportRefreshReuse (or found rotated by RotateRefresh): within the grace
//     window (2 s) its client, authenticated the same way, gets the successor that rotation
//     issued again, with fresh access and ID tokens (a retry whose answer was lost, or a
//     concurrent one; audited refresh_retried), since every rotation keeps its new token
//     sealed for the old token's holder for the grace window (token.SealSuccessor, bound to
//     the client ID and authentication method; the store holds no token). Once that
//     successor was rotated, or after the window, it is invalid_grant, the store revokes the
//     family, and the reuse is audited and reported (oauth2.ClientEvents: a Kubernetes Event).
//     The trade-off (a thief within the window gets the successor too) is in RefreshToken's
//     comment and docs/refresh-tokens.md. A token of another client, or of the same client
//     authenticated another way within the window, is invalid_grant and neither rotated nor
//     revoked. scope may narrow the
//     new access and ID tokens, never widen them (invalid_scope); the new refresh token keeps
//     the family's scopes (RFC 6749 6). All invalid_grant answers of the grant share one
//     description. A family that a grant cutoff ends (store.CutOffGrants: a withdrawn consent,
//     an ended session) is refused by the rotation's own store step, ErrRevoked, so
//     invalid_grant, also for a retry within the window: no extra round trip. Its start is its
//     first refresh token's IssuedAt.
//   - Codes: taken (store.TakeCode) only for the authenticated client they were issued to: a
//     code presented by another client is invalid_grant and stays as it was, so a leaked code
//     is no kill switch. Taken, a failed exchange uses it up. A replay by its own client is
//     invalid_grant; with the code's PKCE verifier (when it had a challenge: a public client's
//     ID proves nothing) it revokes its family for oauth2.Lifetimes.FamilyRevocationEnd and is
//     audited (authorization_code_replayed) and reported (oauth2.ClientEvents). Unlike a
//     refresh, a code exchange whose answer was lost is not answered again: its retry is a
//     replay, which RFC 6749 4.1.2 says must be denied (and, with the verifier, revokes what
//     the lost exchange issued); the client starts the authorization again.
//     redirect_uri must repeat the authorization request's when that had one. PKCE per
//     oauth2.CheckCodeChallenge at the authorization endpoint and checkVerifier here: a code
//     with a challenge needs its verifier, one without refuses any verifier (downgrade). The
//     code's scopes the client may no longer have are dropped (oauth2.StillAllowed).
//   - Password grant (RFC 6749 4.3): only for clients listing password; public clients
//     identify by client_id alone; a request naming no client is invalid_client, so the Authup
//     seed's examples need client_id added. The password is checked by the userauth
//     Authenticator the login page uses too (one lockout policy, one bound on concurrent hash
//     checks, dummy hashing for unknown users): a bad password is invalid_grant "The username or
//     password is wrong.", a locked username (at the caller's address) or address 429
//     temporarily_unavailable with Retry-After.
//   - Store round trips (Redis counts them: see handler's TestRedisRoundTripsPerGrant): a grant
//     signs before its one store call decides. A code exchange or a refresh starts from the
//     record the store knows without a round trip (store.KnownRecords: a Redis replica knows
//     what it issued); when every check passes against it, it signs, then RedeemCode (take the
//     code, store the first refresh token) or RotateRefresh decides, and what the store refuses
//     (a used code, a rotated, reused or revoked token) is answered as without the record and
//     nothing signed is handed out; a replay still revokes (the store's reuse rule; the code's
//     revokeReplayed). A miss, or a failed check, takes the path that reads the store first and
//     answers failures as before. A confidential client's successful authentication is
//     recorded, with its rate limit (a public client's: the rate limit alone), in the grant's
//     first store call that changes something
//     (Admission, store.Admissions: RedeemCodeAdmitted, RotateRefreshAdmitted,
//     TakeCodeAdmitted); before any other such call the grant applies it on its own (Admit),
//     and the endpoint applies one left pending before it answers, so a blocked client is
//     refused (429) whatever else is wrong, and a refused request uses nothing up. client_credentials records
//     the authentication and takes the rate limit in one step (oauth2.AuthOptions.Rate).
//   - Device authorization grant (RFC 8628): POST /oauth2/device_authorization authenticates
//     the client as the token endpoint does (a public client by client_id), requires the
//     device_code grant (unauthorized_client), takes from the client's rate limit and applies
//     the scope policy; a grant_type there is invalid_request. It stores a device grant
//     (store.DeviceGrants) under the hash of a device code (oauth2.NewSecret) and of a user
//     code (oauth2.NewUserCode; a collision with a live one draws again), for
//     DeviceConfig.CodeLifetime (10 min), with the interval (5 s, whole seconds) the response
//     states. verification_uri is the issuer's /oauth2/device, verification_uri_complete adds
//     ?user_code=. The grant polls in one store step: authorization_pending; slow_down for a
//     poll sooner than the interval after the previous one (the interval of that device code
//     grows by DeviceSlowDownStep, 5 s, in the store, so every replica enforces it);
//     access_denied (400) after a denial, on every poll; expired_token for an unknown or expired
//     code and for another client's (256-bit device codes: a well-formed unknown one has
//     expired; another client learns nothing and changes nothing); invalid_grant for a
//     malformed code and for a redeemed one. An approval is taken by exactly one poll, which
//     issues like a code exchange through TokenSet (a new family, refresh token iff the client
//     lists refresh_token, ID token with openid, scopes still allowed): the take happens before
//     signing, so a signing failure (503) uses the approval up and the user starts again.
//   - Token exchange (RFC 8693, token_exchange.go): confidential clients only, and every
//     restriction of the requesting client applies through the dispatcher as for any grant
//     (authentication, the grant type, rate limit, DPoP policy, its scopes, its lifetimes, its
//     targets: the resource and audience parameters are both targets and each must be a
//     ProtectedResource that lists the client among its exchange requesters,
//     oauth2.ExchangeTarget, whether or not the client may reach it itself). Then the grant: parseExchange checks the parameters
//     (invalid_request: subject_token and subject_token_type required, actor_token and
//     actor_token_type together, types access_token, id_token or jwt, requested_token_type
//     only access_token); no target is invalid_target; every target must be a
//     ProtectedResource's audience whose tokenExchange policy lists the requester
//     (ExchangeRequester(client.Source)) and the subject token's source (and, for a
//     WorkloadIssuer's token, that issuer when the policy names issuers), else invalid_target
//     (the same description for an unknown resource and one that does not list the client).
//     The policy is checked before the subject token is verified, so a refused request costs
//     no signature, review or key fetch. Subject tokens: our access tokens (token.Verifier,
//     then oauth2.AccessTokenActive as introspection: jti and family not revoked, client and
//     user still there); our ID tokens, only by the client they were issued to (aud =
//     requester), not expired, user still there; a jwt is a WorkloadIssuer's when its iss is
//     one's, else a local ServiceAccount token (workload.Verifier.VerifySubjectToken: the
//     audience rules of client assertions, at most one hour long). An invalid, expired or
//     revoked subject or actor token is invalid_grant (as Keycloak and Okta answer; RFC
//     8693 2.2.2's invalid_request is kept for malformed parameters). Actor tokens may be of
//     any of these sources (they only name the actor). A DPoP-bound subject or actor token
//     (cnf.jkt) needs a proof of the same key in the request, so an exchange cannot turn a
//     bound token into a bearer one. may_act, when present, must name the actor (the actor
//     token's sub, and iss when may_act has one; without actor token the requester's client
//     ID), else invalid_grant. act is {sub: actor, iss when not ours, act: the subject's
//     act}; without an actor token the subject's act is kept unchanged; the actor token's
//     own act is not part of the chain; at most MaxActorDepth (8) actors. Scopes: a scope
//     parameter is checked against the requester's scope policy and narrowed to what the
//     targets own (oauth2.Target, the dispatcher), and every scope left must be the subject
//     access token's (invalid_scope: never wider); without one the subject access token's
//     scopes (other sources carry none: the requester's defaults) narrowed to those the
//     requester may have and the targets own (oauth2.ResourceScopes). The token: sub the subject's, client_id the requester,
//     aud the targets, the subject access token's latchkey_family and sid (revoking the
//     user's grant revokes exchanged tokens too), the requester's lifetime and algorithm,
//     ending no later than the subject and actor tokens (and the client assertion); no
//     refresh or ID token; issued_token_type access_token. Audited token_exchanged with
//     subject, actor, targets and subject source; counted by latchkey_token_exchanges_total.
//
// It logs with logr.FromContextOrDiscard and never logs a secret, password or token.
package grants
