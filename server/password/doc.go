// Package password checks user passwords against the hashes User resources reference: bcrypt
// ($2a$, $2b$, $2y$) and argon2id in the PHC string format
// ($argon2id$v=19$m=<KiB>,t=<passes>,p=<threads>$<salt>$<key>, unpadded standard base64).
// Plaintext and other formats are refused (ErrUnsupported).
//
// Decisions:
//   - Hash parameters are capped before anything is computed (bcrypt cost 14; argon2id 128 MiB,
//     10 passes, 16 threads, salt 8-64 bytes, key 16-128 bytes), so a hostile or mistaken hash
//     in a Secret cannot exhaust memory or CPU. Callers should also bound how many checks run
//     at once (argon2id allocates m KiB per check).
//   - Only argon2id version 19 is accepted, with its parameters in the canonical order m,t,p;
//     argon2i and argon2d are refused. Keys are compared with crypto/subtle.
//   - A wrong password is (false, nil); errors mean the hash is unusable. bcrypt passwords over
//     72 bytes never match (x/crypto refuses rather than truncates); passwords over
//     MaxPasswordBytes never match argon2id either.
//   - VerifyDummy checks the password against a fixed bcrypt hash of the default cost (10), for
//     unknown users, so that "no such user" takes about as long as "wrong password" with a
//     bcrypt-10 hash. Users with slower hashes remain distinguishable by timing.
//
// It never logs a password or hash.
package password
