package manifests

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	"github.com/latchkey-dev/latchkey/api/v1alpha1"
	"github.com/latchkey-dev/latchkey/controllers/convert"
	"github.com/latchkey-dev/latchkey/server/registry"
)

// Registry is what the loader writes to; *registry.Registry satisfies it.
type Registry interface {
	PutClient(c registry.Client)
	DeleteClient(source string)
	PutScope(source string, s registry.Scope)
	DeleteScope(source string)
	PutUser(u registry.User)
	DeleteUser(source string)
}

// DemoCredentialsAnnotation marks a sample Secret whose client secret is demo data, published with
// the samples; only for such Secrets may the server print a ready-to-run curl line.
const DemoCredentialsAnnotation = "oauth.latchkey.dev/demo-credentials"

// maxFileBytes bounds one manifest file.
const maxFileBytes = 4 << 20

// Objects is one parse of a folder.
type Objects struct {
	Clients []*v1alpha1.OAuthClient
	Scopes  []*v1alpha1.Scope
	Users   []*v1alpha1.User
	Secrets map[string]*corev1.Secret // by namespace/name
}

// DemoClient is a client_credentials client whose secret is marked as demo data.
type DemoClient struct {
	ClientID, ClientSecret string
}

// Loader keeps a registry equal to a folder of manifests.
type Loader struct {
	dir     string
	reg     Registry
	decoder runtime.Decoder

	files   map[string]*Objects // last good parse of each file
	clients map[string]bool     // sources currently put
	scopes  map[string]bool
	users   map[string]bool
	demo    *DemoClient
}

// New returns a loader of dir into reg.
func New(dir string, reg Registry) (*Loader, error) {
	s := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(s); err != nil {
		return nil, err
	}
	if err := corev1.AddToScheme(s); err != nil {
		return nil, err
	}
	return &Loader{
		dir: dir, reg: reg,
		decoder: serializer.NewCodecFactory(s, serializer.EnableStrict).UniversalDeserializer(),
		clients: map[string]bool{}, scopes: map[string]bool{}, users: map[string]bool{},
	}, nil
}

// Demo returns the first client_credentials client whose Secret is marked as demo data, if any.
func (l *Loader) Demo() *DemoClient { return l.demo }

// Load reads the folder once and makes the registry equal to it.
func (l *Loader) Load(ctx context.Context) error {
	objs, err := l.Parse(ctx)
	if err != nil {
		return err
	}
	l.apply(ctx, objs)
	return nil
}

// Parse reads every manifest of the folder. A file that fails to parse contributes what it held at
// its last good parse (nothing, if it never parsed), so a half-saved edit does not drop clients.
func (l *Loader) Parse(ctx context.Context) (*Objects, error) {
	log := logr.FromContextOrDiscard(ctx)
	files := map[string]*Objects{}
	err := filepath.WalkDir(l.dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || !isManifest(path) {
			return nil
		}
		fo := &Objects{Secrets: map[string]*corev1.Secret{}}
		if ferr := l.parseFile(path, fo); ferr != nil {
			log.Error(ferr, "manifest file not loaded; keeping its last good contents", "file", path)
			if prev, ok := l.files[path]; ok {
				files[path] = prev
			}
			return nil
		}
		files[path] = fo
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read manifests from %s: %w", l.dir, err)
	}
	l.files = files
	objs := &Objects{Secrets: map[string]*corev1.Secret{}}
	paths := slices.Sorted(maps.Keys(files))
	for _, p := range paths {
		fo := files[p]
		objs.Clients = append(objs.Clients, fo.Clients...)
		objs.Scopes = append(objs.Scopes, fo.Scopes...)
		objs.Users = append(objs.Users, fo.Users...)
		maps.Copy(objs.Secrets, fo.Secrets)
	}
	return objs, nil
}

func isManifest(path string) bool {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".yaml", ".yml", ".json":
		return !strings.HasPrefix(filepath.Base(path), ".")
	}
	return false
}

func (l *Loader) parseFile(path string, objs *Objects) error {
	f, err := os.Open(path) //nolint:gosec // the operator names the folder
	if err != nil {
		return err
	}
	defer f.Close() //nolint:errcheck // read-only
	data, err := io.ReadAll(io.LimitReader(f, maxFileBytes+1))
	if err != nil {
		return err
	}
	if len(data) > maxFileBytes {
		return fmt.Errorf("file is larger than %d bytes", maxFileBytes)
	}
	return l.parseBytes(data, objs)
}

// parseBytes decodes every document of one file.
func (l *Loader) parseBytes(data []byte, objs *Objects) error {
	reader := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	for i := 0; ; i++ {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("document %d: %w", i, err)
		}
		if len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		if err := l.decodeDoc(doc, objs); err != nil {
			return fmt.Errorf("document %d: %w", i, err)
		}
	}
}

func (l *Loader) decodeDoc(doc []byte, objs *Objects) error {
	obj, _, err := l.decoder.Decode(doc, nil, nil)
	if runtime.IsNotRegisteredError(err) || runtime.IsMissingKind(err) || runtime.IsMissingVersion(err) {
		return nil // another kind of document: skipped
	}
	if err != nil {
		return err
	}
	switch o := obj.(type) {
	case *v1alpha1.OAuthClient:
		if o.Namespace == "" {
			o.Namespace = corev1.NamespaceDefault
		}
		objs.Clients = append(objs.Clients, o)
	case *v1alpha1.Scope:
		objs.Scopes = append(objs.Scopes, o)
	case *v1alpha1.User:
		objs.Users = append(objs.Users, o)
	case *corev1.Secret:
		if o.Namespace == "" {
			o.Namespace = corev1.NamespaceDefault
		}
		// stringData is read where values are read (convert.SecretData), as for Secrets from a
		// cluster.
		objs.Secrets[o.Namespace+"/"+o.Name] = o
	}
	return nil
}

// apply makes the registry equal to objs: puts everything converted, deletes what went away.
func (l *Loader) apply(ctx context.Context, objs *Objects) {
	log := logr.FromContextOrDiscard(ctx)
	seen := map[string]bool{}
	var demo *DemoClient
	for _, oc := range objs.Clients {
		name, _ := convert.SecretRef(oc)
		secret := objs.Secrets[oc.Namespace+"/"+name]
		c, err := convert.Client(oc, secret)
		if err != nil {
			log.Info("skipping OAuthClient", "namespace", oc.Namespace, "name", oc.Name, "reason", err.Error())
			continue
		}
		l.reg.PutClient(c)
		seen[c.Source] = true
		if demo == nil {
			demo = demoClient(oc, secret, c)
		}
	}
	l.deleteMissing(l.clients, seen, l.reg.DeleteClient)
	l.clients, l.demo = seen, demo

	seen = map[string]bool{}
	for _, s := range objs.Scopes {
		src, sc, err := convert.Scope(s)
		if err != nil {
			log.Info("skipping Scope", "name", s.Name, "reason", err.Error())
			continue
		}
		l.reg.PutScope(src, sc)
		seen[src] = true
	}
	l.deleteMissing(l.scopes, seen, l.reg.DeleteScope)
	l.scopes = seen

	seen = map[string]bool{}
	for _, u := range objs.Users {
		var secret *corev1.Secret
		if ns, name, _, ok := convert.PasswordSecretRef(u); ok {
			secret = objs.Secrets[ns+"/"+name]
		}
		ru, err := convert.User(u, secret)
		switch {
		case errors.Is(err, convert.ErrSecretNotFound):
			log.Info("User cannot log in until its password Secret exists", "name", u.Name, "reason", err.Error())
		case err != nil:
			log.Info("skipping User", "name", u.Name, "reason", err.Error())
			continue
		}
		l.reg.PutUser(ru)
		seen[ru.Source] = true
	}
	l.deleteMissing(l.users, seen, l.reg.DeleteUser)
	l.users = seen
	clients, scopes, users := len(l.clients), len(l.scopes), len(l.users)
	log.Info("manifests loaded", "dir", l.dir, "clients", clients, "scopes", scopes, "users", users)
}

func (l *Loader) deleteMissing(before, now map[string]bool, del func(string)) {
	for src := range before {
		if !now[src] {
			del(src)
		}
	}
}

func demoClient(oc *v1alpha1.OAuthClient, secret *corev1.Secret, c registry.Client) *DemoClient {
	if secret == nil || secret.Annotations[DemoCredentialsAnnotation] != "true" ||
		!slices.Contains(c.GrantTypes, string(v1alpha1.GrantTypeClientCredentials)) {
		return nil
	}
	_, key := convert.SecretRef(oc)
	value, _ := convert.SecretData(secret, key)
	return &DemoClient{ClientID: c.ID, ClientSecret: string(value)}
}

// maxDebounces bounds the wait of a reload: at most maxDebounces×debounce after the first change.
const maxDebounces = 10

// Watch reloads the folder whenever something in it changes, until ctx ends. Changes within
// debounce of each other are applied as one reload, but a folder that never stays quiet (a tool
// rewriting a file in a loop) is still reloaded maxDebounces×debounce after the first change.
func (l *Loader) Watch(ctx context.Context, debounce time.Duration) error {
	log := logr.FromContextOrDiscard(ctx)
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watch %s: %w", l.dir, err)
	}
	defer w.Close() //nolint:errcheck // nothing to do about it at shutdown
	if err := addDirs(w, l.dir); err != nil {
		return err
	}
	timer := time.NewTimer(debounce)
	timer.Stop()
	defer timer.Stop()
	var deadline time.Time // of the pending reload; zero: none pending
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.Events:
			if !ok {
				return nil
			}
			if ev.Has(fsnotify.Create) {
				if fi, err := os.Stat(ev.Name); err == nil && fi.IsDir() {
					_ = addDirs(w, ev.Name) //nolint:errcheck // best effort: reported on the next reload
				}
			}
			now := time.Now()
			if deadline.IsZero() {
				deadline = now.Add(maxDebounces * debounce)
			}
			timer.Reset(min(debounce, deadline.Sub(now)))
		case err, ok := <-w.Errors:
			if !ok {
				return nil
			}
			log.Error(err, "watching manifests")
		case <-timer.C:
			deadline = time.Time{}
			if err := l.Load(ctx); err != nil {
				log.Error(err, "reloading manifests")
			}
		}
	}
}

func addDirs(w *fsnotify.Watcher, root string) error {
	return filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if err := w.Add(path); err != nil {
				return fmt.Errorf("watch %s: %w", path, err)
			}
		}
		return nil
	})
}
