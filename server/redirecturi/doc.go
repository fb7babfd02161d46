// Package redirecturi is the one rule for OAuth 2.0 redirect URIs. Every place that admits a
// redirect URI applies it: the conversion of OAuthClient resources (applied with kubectl, or read
// from manifests in the embedded mode) in controllers/convert, and dynamic client registration.
// The OAuthClient CRD's CEL rules express the parts of it CEL can (api/v1alpha1), never more, so
// the API server does not refuse a client that registration accepted.
//
// The rule (Check): a redirect URI
//   - has at most MaxLength (2048) bytes;
//   - has no fragment (RFC 6749 3.1.2), so no '#' at all;
//   - has no white space or control characters (unicode.IsSpace or unicode.IsControl: ASCII
//     controls, DEL, C1 controls, Unicode spaces such as U+00A0 and U+2028);
//   - has no format characters (unicode.Cf: zero-width characters, bidi controls such as
//     U+202E, the byte order mark, the soft hyphen), which hide or reorder what a person reads;
//   - is an absolute URI with a lower-case scheme that net/url parses;
//   - has no user information ("https://user:pw@host" is refused: browsers may show it as the
//     host, and credentials do not belong in a registered URI);
//   - has an ASCII host, also once percent-decoded: an internationalized domain name is written
//     in punycode (xn--), so a look-alike host (a Cyrillic "а" for a Latin "a") shows as the
//     xn-- name it is, on the consent page and in a review;
//   - has a port from 1 to 65535, if it has one;
//   - with scheme https, starts with "https://" and names a host;
//   - with scheme http, names exactly a loopback host (localhost, 127.0.0.1 or [::1], RFC 8252
//     7.3), with an optional port, followed by '/', '?' or nothing;
//   - with any other scheme, uses a private-use scheme in reverse-domain form (RFC 8252 7.1:
//     the scheme has a period, e.g. com.example.app) and has something after it
//     ("com.example.app:" alone is refused).
//
// CheckLogoutURI applies the same rule to back-channel logout URIs (spec.backchannelLogoutURI),
// without the private-use schemes: https, or http on a loopback host (ErrNotHTTP otherwise).
//
// It is an allowlist: every other scheme is refused (ErrSchemeNotAllowed), among them
// javascript, data, vbscript, file, ws, wss, ftp, blob, about, view-source, ms-officecmd and
// single-label custom schemes such as myapp.
//
// Origin and Origins (origin.go) give the CORS origins of a Public client: Origin writes an
// http(s) origin as browsers send it in the Origin header, or refuses it, and Origins takes the
// origins of redirect URIs, the default of an OAuthClient's allowedOrigins. controllers/convert
// and the embedded registrar (server/registration) use them, so the server compares Origin
// headers byte for byte.
//
// Decisions:
//   - The errors are fixed phrases that read after the URI ("must not contain user
//     information"), without the URI itself: callers quote the URI as they see fit (a condition
//     message, an RFC 7591 error description) and may shorten it.
//   - C1 control characters are refused with the other controls, so the CRD can say
//     \p{Cc} in one class; no client needs them.
//   - Check is stricter than the CRD's CEL rules: format characters, a host that is not ASCII
//     and a port out of range pass the API server and are refused by controllers/convert (the
//     OAuthClient is not served, InvalidSpec) and by registration. CEL may never refuse what
//     Check accepts (controllers/convert's FuzzCRDRulesNeverRefuseWhatCheckAccepts).
//   - Nothing here normalises a URI. The authorization endpoint matches a requested redirect URI
//     with Registered: byte for byte, except that an http URI registered on a loopback host
//     matches the same URI with any port (RFC 8252 7.3); the token request then repeats the
//     requested URI byte for byte.
//     Origins are normalised (Origin): the Origin header is a serialisation, not what someone
//     typed.
//   - Reverse-domain form: labels of lower-case letters, digits and '-', joined by single
//     periods, at least two, the first starting with a letter. '+' (legal in a scheme, never in
//     a domain name), empty labels and a trailing period are refused. Whether the domain is the
//     developer's is not checked (RFC 8252 7.1 leaves that to the operating system); a
//     single-label scheme is refused because any app may claim it.
//
// It uses the standard library only.
package redirecturi
