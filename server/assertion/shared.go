package assertion

import (
	"context"
	"errors"

	"golang.org/x/sync/singleflight"
)

// callerGone marks the error of a shared call whose leader's context ended.
type callerGone struct{ err error }

func (e *callerGone) Error() string { return e.err.Error() }
func (e *callerGone) Unwrap() error { return e.err }

// sharedCall runs fn (which must use ctx) once for concurrent callers of one key. A follower
// whose leader failed only because the leader's context ended calls again, with its own
// context, a few times at most.
func sharedCall[T any](ctx context.Context, g *singleflight.Group, key string, fn func(context.Context) (T, error)) (T, error) {
	var (
		v   any
		err error
	)
	for range 3 {
		v, err, _ = g.Do(key, func() (any, error) {
			t, err := fn(ctx)
			if err != nil && ctx.Err() != nil {
				return t, &callerGone{err: err}
			}
			return t, err
		})
		var gone *callerGone
		if !errors.As(err, &gone) {
			break
		}
		err = gone.err
		if ctx.Err() != nil {
			break
		}
	}
	t, _ := v.(T)
	return t, err
}
