package password

import (
	"bytes"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

// Limits on the parameters of a stored hash. A hash beyond them is refused without being
// computed, so a hostile or mistaken hash cannot take the server's memory or CPU.
const (
	// MaxBcryptCost is about 0.8 s per check on the reference machine (cost 10 is 49 ms).
	MaxBcryptCost = 14
	// MaxArgon2Memory is in KiB: 128 MiB.
	MaxArgon2Memory = 128 << 10
	// MaxArgon2Time is the maximum number of passes.
	MaxArgon2Time = 10
	// MaxArgon2Threads is the maximum parallelism.
	MaxArgon2Threads = 16
	// Salt and key lengths, in bytes.
	minArgon2Salt, maxArgon2Salt = 8, 64
	minArgon2Key, maxArgon2Key   = 16, 128
	// MaxPasswordBytes bounds the password itself; longer ones never match.
	MaxPasswordBytes = 1024
)

// Errors of Verify. A wrong password is not an error: Verify returns false and nil.
var (
	// ErrNoHash: the user has no password hash and cannot log in with a password.
	ErrNoHash = errors.New("password: no hash")
	// ErrUnsupported: the hash is not bcrypt or argon2id.
	ErrUnsupported = errors.New("password: unsupported hash format")
	// ErrMalformed: the hash is bcrypt or argon2id but cannot be parsed.
	ErrMalformed = errors.New("password: malformed hash")
	// ErrLimits: the hash's parameters exceed the limits above.
	ErrLimits = errors.New("password: hash parameters exceed the limits")
)

// dummyHash is a bcrypt hash (cost 10, bcrypt.DefaultCost) of a password nobody uses, for
// VerifyDummy.
const dummyHash = "$2a$10$CS/naSom66kDANHpt2wC0uz051wORPY/XTFYu0ybrP9xV4W/LGd5O"

// Verify reports whether password matches hash, a bcrypt hash ($2a$, $2b$, $2y$) or an
// argon2id PHC string ($argon2id$v=19$m=...,t=...,p=...$salt$key). It compares in constant
// time. A mismatch is (false, nil); an unusable hash is (false, error).
func Verify(hash []byte, password string) (bool, error) {
	switch {
	case len(hash) == 0:
		return false, ErrNoHash
	case bytes.HasPrefix(hash, []byte("$2a$")), bytes.HasPrefix(hash, []byte("$2b$")),
		bytes.HasPrefix(hash, []byte("$2y$")):
		return verifyBcrypt(hash, password)
	case bytes.HasPrefix(hash, []byte("$argon2id$")):
		p, err := ParseArgon2id(string(hash))
		if err != nil {
			return false, err
		}
		if len(password) > MaxPasswordBytes {
			return false, nil
		}
		return p.Verify(password), nil
	}
	return false, ErrUnsupported
}

// Check reports whether hash is a usable bcrypt or argon2id hash within the limits, without
// checking any password: the controllers refuse a User whose hash Verify could never use.
func Check(hash []byte) error {
	switch {
	case len(hash) == 0:
		return ErrNoHash
	case bytes.HasPrefix(hash, []byte("$2a$")), bytes.HasPrefix(hash, []byte("$2b$")),
		bytes.HasPrefix(hash, []byte("$2y$")):
		cost, err := bcrypt.Cost(hash)
		if err != nil || len(hash) != 60 {
			return fmt.Errorf("%w: not a bcrypt hash", ErrMalformed)
		}
		if cost > MaxBcryptCost {
			return fmt.Errorf("%w: bcrypt cost %d > %d", ErrLimits, cost, MaxBcryptCost)
		}
		return nil
	case bytes.HasPrefix(hash, []byte("$argon2id$")):
		_, err := ParseArgon2id(string(hash))
		return err
	}
	return ErrUnsupported
}

// VerifyDummy spends about the time of checking a password against a bcrypt hash of the
// default cost, and returns nothing: callers run it when the user does not exist (or has no
// usable hash), so that the answer takes as long as a wrong password would.
func VerifyDummy(password string) {
	_, _ = verifyBcrypt([]byte(dummyHash), password)
}

func verifyBcrypt(hash []byte, password string) (bool, error) {
	cost, err := bcrypt.Cost(hash)
	if err != nil {
		return false, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if cost > MaxBcryptCost {
		return false, fmt.Errorf("%w: bcrypt cost %d > %d", ErrLimits, cost, MaxBcryptCost)
	}
	// bcrypt uses at most 72 bytes; x/crypto refuses longer passwords rather than truncating.
	err = bcrypt.CompareHashAndPassword(hash, []byte(password))
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, bcrypt.ErrMismatchedHashAndPassword), errors.Is(err, bcrypt.ErrPasswordTooLong):
		return false, nil
	}
	return false, fmt.Errorf("%w: %w", ErrMalformed, err)
}

// Argon2id is a parsed argon2id PHC string.
type Argon2id struct {
	Memory  uint32 // KiB
	Time    uint32
	Threads uint8
	Salt    []byte
	Key     []byte
}

// ParseArgon2id parses "$argon2id$v=19$m=<KiB>,t=<passes>,p=<threads>$<salt>$<key>", salt and
// key in unpadded standard base64 (the PHC string format). Only version 19 (0x13) is accepted,
// parameters in that order only, within the limits.
func ParseArgon2id(s string) (*Argon2id, error) {
	rest, ok := strings.CutPrefix(s, "$argon2id$v=19$")
	if !ok {
		if strings.HasPrefix(s, "$argon2id$") {
			return nil, fmt.Errorf("%w: argon2id version must be 19", ErrMalformed)
		}
		return nil, ErrUnsupported
	}
	params, rest, ok1 := strings.Cut(rest, "$")
	salt64, key64, ok2 := strings.Cut(rest, "$")
	if !ok1 || !ok2 {
		return nil, fmt.Errorf("%w: argon2id needs parameters, salt and key", ErrMalformed)
	}
	var p Argon2id
	var m, t, th uint64
	for i, dst := range []*uint64{&m, &t, &th} {
		var field string
		field, params, _ = strings.Cut(params, ",")
		name, value, ok := strings.Cut(field, "=")
		if !ok || name != "mtp"[i:i+1] || value == "" || len(value) > 10 || (len(value) > 1 && value[0] == '0') {
			return nil, fmt.Errorf("%w: argon2id parameters must be m=,t=,p=", ErrMalformed)
		}
		n, err := strconv.ParseUint(value, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("%w: argon2id parameter %s", ErrMalformed, name)
		}
		*dst = n
	}
	if params != "" {
		return nil, fmt.Errorf("%w: argon2id has extra parameters", ErrMalformed)
	}
	if m == 0 || t == 0 || th == 0 || m < 8*th {
		return nil, fmt.Errorf("%w: argon2id parameters out of range", ErrMalformed)
	}
	if m > MaxArgon2Memory || t > MaxArgon2Time || th > MaxArgon2Threads {
		return nil, fmt.Errorf("%w: argon2id m=%d,t=%d,p=%d", ErrLimits, m, t, th)
	}
	p.Memory, p.Time, p.Threads = uint32(m), uint32(t), uint8(th) //nolint:gosec // bounded above
	var err error
	if p.Salt, err = decodeB64(salt64, minArgon2Salt, maxArgon2Salt); err != nil {
		return nil, fmt.Errorf("%w: argon2id salt: %w", ErrMalformed, err)
	}
	if p.Key, err = decodeB64(key64, minArgon2Key, maxArgon2Key); err != nil {
		return nil, fmt.Errorf("%w: argon2id key: %w", ErrMalformed, err)
	}
	return &p, nil
}

// decodeB64 decodes unpadded standard base64 of a length within [minLen, maxLen] bytes.
func decodeB64(s string, minLen, maxLen int) ([]byte, error) {
	// encoding/base64 skips \r and \n; a hash has no business containing them.
	if strings.ContainsAny(s, "\r\n") {
		return nil, errors.New("line breaks in base64")
	}
	enc := base64.RawStdEncoding.Strict()
	if n := enc.DecodedLen(len(s)); n < minLen || n > maxLen {
		return nil, fmt.Errorf("length %d not in [%d, %d]", n, minLen, maxLen)
	}
	return enc.DecodeString(s)
}

// String is the PHC string of the hash.
func (p *Argon2id) String() string {
	return fmt.Sprintf("$argon2id$v=19$m=%d,t=%d,p=%d$%s$%s", p.Memory, p.Time, p.Threads,
		base64.RawStdEncoding.EncodeToString(p.Salt), base64.RawStdEncoding.EncodeToString(p.Key))
}

// Verify reports, in constant time, whether password hashes to the key.
func (p *Argon2id) Verify(password string) bool {
	got := argon2.IDKey([]byte(password), p.Salt, p.Time, p.Memory, p.Threads, uint32(len(p.Key))) //nolint:gosec // len <= maxArgon2Key
	return subtle.ConstantTimeCompare(got, p.Key) == 1
}

// HashArgon2id hashes password with argon2id (19 MiB, 2 passes, 1 thread: the OWASP
// minimum) and a random 16-byte salt, for tests and tools.
func HashArgon2id(password string) (string, error) {
	p := Argon2id{Memory: 19 << 10, Time: 2, Threads: 1, Salt: make([]byte, 16)}
	if _, err := rand.Read(p.Salt); err != nil {
		return "", fmt.Errorf("password: random salt: %w", err)
	}
	p.Key = argon2.IDKey([]byte(password), p.Salt, p.Time, p.Memory, p.Threads, 32)
	return p.String(), nil
}
