package handler

// The texts the pages and the token endpoint show, as users and clients read them. The tests
// pin them here, apart from the constants of the packages that write them.
const (
	msgExpired            = "This sign-in request has expired or was already used. Go back to the application and start again."
	msgMissingCredentials = "Enter your username and password."
	msgBadCredentials     = "Incorrect username or password."
	msgLocked             = "Too many failed sign-in attempts. Wait a few minutes, then try again."
	badCredentials        = "The username or password is wrong."
	tooManyFailures       = "Too many failed attempts; retry after the Retry-After delay."
	badRefreshToken       = "The refresh token is invalid, expired or revoked."
)
