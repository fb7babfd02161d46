// Package policy evaluates OAuthClientPolicies: Evaluate is the one pure function that says which
// rules of which policies an OAuthClient breaks. The registry reconcilers (every replica: a
// violating client is withdrawn), the leader's OAuthClient controller (Ready=False, reason
// PolicyViolation, naming the policy, the rule and the value), the manifest loader (embedded
// mode) and dynamic registration (refused with invalid_client_metadata) all call it, so the
// answer is the same everywhere. The chart's ValidatingAdmissionPolicy
// (charts/latchkey/templates/oauthclientpolicy-admission.yaml) says the same rules in CEL, at
// apply time; this package is what still holds for objects admission never saw (created before
// the policy, manifests on disk, the in-memory registrar). EvaluateResource holds a
// ProtectedResource's audience to the same allowedAudiences (a second admission policy,
// latchkey-protectedresource-audience, in the same file).
//
// Decisions:
//   - Every field absent means no restriction. An empty list (allowedScopes: []) allows
//     nothing of that kind.
//   - Several policies apply to one client (every policy of its namespace, and the default
//     policy the server is told of): the client must satisfy all of them; Evaluate lists the
//     violations of each.
//   - Scopes and audiences: an exact value, or a prefix and a final * (billing:* allows
//     billing:read; * allows all). A * elsewhere is invalid (Check; the CRD refuses it).
//   - Redirect-URI hosts: an exact host name or IP address (IPv6 without brackets), compared
//     ignoring case, or *.domain for any host under domain, at any depth, but not domain
//     itself. A private-use scheme URI (com.example.app:/cb) has no host; its scheme is matched
//     instead, so a policy lists com.example.app to allow it. The rule also bounds the host of
//     spec.backchannelLogoutURI: the server sends requests there, so a namespace held to its
//     own hosts for redirects is held to them for logout tokens too (one list, no new field).
//   - Lifetimes: a client without its own lifetime is held to the server's default (access and
//     ID tokens 3600 s, refresh tokens 30 days, codes 600 s), so a policy bounding below the
//     default makes such clients state theirs.
//   - Audiences: a client without audiences (its tokens' audience is its own client ID) is
//     always allowed.
//   - Authentication methods apply to Confidential clients (secret covers client_secret_basic,
//     client_secret_post and an unset method); Public clients (none) are governed by
//     allowPublicClients alone.
//   - allowDynamicRegistration false also refuses existing clients with the
//     oauth.latchkey.dev/registered label.
//   - A policy that Check refuses (manifests on disk only: the CRD validates the same) is still
//     applied as far as it can be read, and its malformed patterns match nothing: a typo closes,
//     never opens. The leader reports it Ready=False, reason InvalidSpec.
//
// This package imports api/ and controllers/convert only; it runs without a cluster (the
// embedded mode), which depguard keeps true (.golangci.yml).
package policy
