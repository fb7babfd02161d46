// Package audit writes the audit log: one JSON object per line for every security-relevant
// event of the OAuth 2.0 handler (tokens issued, refresh rotation and reuse, revocations,
// logins, consent, client registrations). A record never holds a token, code, secret or
// password: tokens appear as their jti or a short prefix of their SHA-256 hash.
package audit
