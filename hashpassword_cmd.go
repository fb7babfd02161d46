package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"golang.org/x/crypto/bcrypt"
	"golang.org/x/term"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"

	"github.com/latchkey-dev/latchkey/controllers/convert"
	"github.com/latchkey-dev/latchkey/server/password"
)

const hashPasswordSynopsis = `Usage: latchkey hash-password [flags] [< password-file]

Hashes a User's password for the Secret its spec.passwordSecretRef names: bcrypt (cost 10) by
default, argon2id (19 MiB, 2 passes, 1 thread) with --argon2id. The password is read from stdin
(one line; a final line break is dropped) or, on a terminal, prompted for twice without echo.
Prints the hash, or with --secret NAME a Secret manifest (--output yaml, for kubectl apply -f -
or a --manifests folder) or a kubectl create secret generic command (--output kubectl).

  latchkey hash-password --secret alice-password --namespace default | kubectl apply -f -
  printf '%s' "$PASSWORD" | latchkey hash-password --argon2id
`

type hashPasswordOptions struct {
	argon2id   bool
	cost       int
	secretName string
	namespace  string
	key        string
	output     string
}

func (o *hashPasswordOptions) bind(fs *flag.FlagSet) {
	fs.BoolVar(&o.argon2id, "argon2id", false, "hash with argon2id instead of bcrypt")
	fs.IntVar(&o.cost, "cost", bcrypt.DefaultCost, fmt.Sprintf("bcrypt cost, %d to %d (each step doubles the time of a login)", bcrypt.MinCost, password.MaxBcryptCost))
	fs.StringVar(&o.secretName, "secret", "", "print a Secret of this name holding the hash instead of the hash alone")
	fs.StringVar(&o.namespace, "namespace", "default", "with --secret: the Secret's namespace (the User's passwordSecretRef.namespace)")
	fs.StringVar(&o.key, "key", convert.PasswordKey, "with --secret: the key of the hash in the Secret (the User's passwordSecretRef.key)")
	fs.StringVar(&o.output, "output", "yaml", "with --secret: yaml (a Secret manifest) or kubectl (a kubectl create secret generic command)")
}

func (o *hashPasswordOptions) validate(set map[string]bool) error {
	if o.argon2id && set["cost"] {
		return errors.New("--cost is for bcrypt; argon2id's parameters are fixed")
	}
	if o.cost < bcrypt.MinCost || o.cost > password.MaxBcryptCost {
		return fmt.Errorf("--cost %d: want %d to %d (the server refuses hashes above %d)", o.cost, bcrypt.MinCost, password.MaxBcryptCost, password.MaxBcryptCost)
	}
	if o.secretName == "" {
		for _, f := range []string{"namespace", "key", "output"} {
			if set[f] {
				return fmt.Errorf("--%s is for --secret", f)
			}
		}
		return nil
	}
	if errs := validation.IsDNS1123Subdomain(o.secretName); len(errs) > 0 {
		return fmt.Errorf("--secret %q is not a Secret name: %s", o.secretName, strings.Join(errs, "; "))
	}
	if errs := validation.IsDNS1123Label(o.namespace); len(errs) > 0 {
		return fmt.Errorf("--namespace %q is not a namespace name: %s", o.namespace, strings.Join(errs, "; "))
	}
	if errs := validation.IsConfigMapKey(o.key); len(errs) > 0 {
		return fmt.Errorf("--key %q is not a Secret key: %s", o.key, strings.Join(errs, "; "))
	}
	if o.output != "yaml" && o.output != "kubectl" {
		return fmt.Errorf("--output %q: want yaml or kubectl", o.output)
	}
	return nil
}

// hashPassword is `latchkey hash-password`.
func hashPassword(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("hash-password", flag.ContinueOnError)
	var o hashPasswordOptions
	o.bind(fs)
	if err := parseFlags(fs, args, hashPasswordSynopsis, stdout); err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if err := o.validate(set); err != nil {
		return &usageError{command: fs.Name(), err: err}
	}
	var pw []byte
	var err error
	if f, ok := stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		pw, err = promptTwice(terminalReader(int(f.Fd()), stderr))
	} else {
		pw, err = readPassword(stdin)
	}
	if err != nil {
		return err
	}
	hash, err := o.hash(pw)
	if err != nil {
		return err
	}
	return o.print(stdout, hash)
}

// promptTwice asks for the password and its confirmation.
func promptTwice(read func(prompt string) ([]byte, error)) ([]byte, error) {
	pw, err := read("Password: ")
	if err != nil {
		return nil, fmt.Errorf("read the password: %w", err)
	}
	if err := checkPassword(pw); err != nil {
		return nil, err
	}
	again, err := read("Password again: ")
	if err != nil {
		return nil, fmt.Errorf("read the password: %w", err)
	}
	if !bytes.Equal(pw, again) {
		return nil, errors.New("the passwords differ")
	}
	return pw, nil
}

// terminalReader prompts on stderr and reads a line from the terminal fd without echo. Ctrl-C
// at the prompt turns the echo back on before the process exits (130, as a shell reports it).
func terminalReader(fd int, stderr io.Writer) func(prompt string) ([]byte, error) {
	return func(prompt string) ([]byte, error) {
		state, err := term.GetState(fd)
		if err != nil {
			return nil, err
		}
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
		done := make(chan struct{})
		defer func() { signal.Stop(sig); close(done) }()
		go func() {
			select {
			case <-sig:
				_ = term.Restore(fd, state)
				fmt.Fprintln(stderr)
				os.Exit(130)
			case <-done:
			}
		}()
		fmt.Fprint(stderr, prompt)
		defer fmt.Fprintln(stderr)
		return term.ReadPassword(fd)
	}
}

// readPassword reads one line from r: the password, without its final line break.
func readPassword(r io.Reader) ([]byte, error) {
	pw, err := io.ReadAll(io.LimitReader(r, password.MaxPasswordBytes+3))
	if err != nil {
		return nil, fmt.Errorf("read the password from stdin: %w", err)
	}
	pw = bytes.TrimSuffix(pw, []byte("\n"))
	pw = bytes.TrimSuffix(pw, []byte("\r"))
	return pw, checkPassword(pw)
}

func checkPassword(pw []byte) error {
	switch {
	case len(pw) == 0:
		return errors.New("empty password: give it on stdin (one line) or type it at the prompt")
	case len(pw) > password.MaxPasswordBytes:
		return fmt.Errorf("the password is longer than %d bytes, which the server never accepts", password.MaxPasswordBytes)
	case bytes.ContainsAny(pw, "\r\n"):
		return errors.New("the password holds a line break: give one line on stdin (a login form cannot send one)")
	}
	return nil
}

// hash hashes pw and checks that the server would accept the hash and verify pw against it.
func (o *hashPasswordOptions) hash(pw []byte) (string, error) {
	var hash string
	if o.argon2id {
		h, err := password.HashArgon2id(string(pw))
		if err != nil {
			return "", err
		}
		hash = h
	} else {
		if len(pw) > 72 {
			return "", fmt.Errorf("bcrypt uses at most 72 bytes of a password and this one has %d: use --argon2id", len(pw))
		}
		h, err := bcrypt.GenerateFromPassword(pw, o.cost)
		if err != nil {
			return "", fmt.Errorf("bcrypt: %w", err)
		}
		hash = string(h)
	}
	if err := password.Check([]byte(hash)); err != nil {
		return "", fmt.Errorf("the hash would be refused: %w", err)
	}
	ok, err := password.Verify([]byte(hash), string(pw))
	if err != nil {
		return "", fmt.Errorf("the hash does not verify: %w", err)
	}
	if !ok {
		return "", errors.New("the password does not verify against its hash")
	}
	return hash, nil
}

// secretManifest is the Secret printed by --secret --output yaml.
type secretManifest struct {
	APIVersion string            `json:"apiVersion"`
	Kind       string            `json:"kind"`
	Metadata   secretMetadata    `json:"metadata"`
	Type       string            `json:"type"`
	StringData map[string]string `json:"stringData"`
}

type secretMetadata struct {
	Name      string `json:"name"`
	Namespace string `json:"namespace"`
}

func (o *hashPasswordOptions) print(w io.Writer, hash string) error {
	if o.secretName == "" {
		_, err := fmt.Fprintln(w, hash)
		return err
	}
	ref := fmt.Sprintf("passwordSecretRef: {namespace: %s, name: %s, key: %s}", o.namespace, o.secretName, o.key)
	if o.output == "kubectl" {
		// A hash holds no single quote: it is safe inside one.
		_, err := fmt.Fprintf(w, "kubectl create secret generic %s --namespace %s --from-literal=%s='%s'\n", o.secretName, o.namespace, o.key, hash)
		return err
	}
	out, err := yaml.Marshal(secretManifest{
		APIVersion: "v1", Kind: "Secret", Type: "Opaque",
		Metadata:   secretMetadata{Name: o.secretName, Namespace: o.namespace},
		StringData: map[string]string{o.key: hash},
	})
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "# The password hash of a User whose spec has %s\n%s", ref, out)
	return err
}
