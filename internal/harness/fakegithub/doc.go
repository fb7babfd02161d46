// Package fakegithub is the test harness's GitHub: a loopback httptest server that acts as a
// GitHub Enterprise Server, with the OAuth web flow (PKCE S256 checked) at /login/oauth/* and
// the REST API endpoints the GitHub sign-in reads (/api/v3/user, /user/emails, /user/orgs,
// /user/teams, /meta). A test says who signs in at its authorize endpoint, changes users
// (organizations, teams), counts /user calls and can replace the whole handler (failures).
//
// It imports the standard library and testify, nothing of Latchkey.
package fakegithub
