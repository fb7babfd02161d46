package jsonlines

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// writes records every Write it is given, as the string it held then.
type writes struct {
	mu  sync.Mutex
	got []string
}

func (w *writes) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.got = append(w.got, string(p))
	return len(p), nil
}

func TestWrite(t *testing.T) {
	type line struct {
		A string `json:"a"`
		N int    `json:"n,omitempty"`
	}
	long := strings.Repeat("x", 2*maxPooled)
	tests := []struct {
		name  string
		value any
		want  string
		ok    bool
	}{
		{name: "a value is written as encoding/json marshals it, and a newline", value: line{A: "b", N: 3}, want: `{"a":"b","n":3}` + "\n", ok: true},
		{name: "characters are escaped as json.Marshal escapes them", value: line{A: "<x>&\"\n"}, want: `{"a":"\u003cx\u003e\u0026\"\n"}` + "\n", ok: true},
		{name: "a line longer than a pooled buffer is written whole", value: line{A: long}, want: `{"a":"` + long + `"}` + "\n", ok: true},
		{name: "a value that cannot be encoded writes nothing", value: math.NaN(), ok: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := &writes{}
			assert.Equal(t, tt.ok, New(w).Write(tt.value))
			if !tt.ok {
				assert.Empty(t, w.got)
				return
			}
			require.Len(t, w.got, 1, "one Write per line")
			assert.Equal(t, tt.want, w.got[0])
			want, err := json.Marshal(tt.value)
			require.NoError(t, err)
			assert.Equal(t, string(want)+"\n", w.got[0], "the same bytes as json.Marshal")
		})
	}
}

// A buffer goes back to the pool after its line is written: the next, shorter line must not
// carry bytes of the one before.
func TestLinesDoNotShareBytes(t *testing.T) {
	var buf bytes.Buffer
	j := New(&buf)
	j.Write(map[string]string{"k": strings.Repeat("long", 100)})
	j.Write(map[string]string{"k": "s"})
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	require.Len(t, lines, 2)
	assert.Equal(t, `{"k":"s"}`, lines[1])
}

// Lines written from many goroutines at once each arrive whole, in a Write of their own.
func TestConcurrentLinesStayWhole(t *testing.T) {
	w := &writes{}
	j := New(w)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				j.Write(map[string]string{"line": fmt.Sprintf("%d-%d-%s", g, i, strings.Repeat("y", i))})
			}
		})
	}
	wg.Wait()
	require.Len(t, w.got, 8*200)
	seen := map[string]bool{}
	for _, s := range w.got {
		require.True(t, strings.HasSuffix(s, "\n"), s)
		var v map[string]string
		require.NoError(t, json.Unmarshal([]byte(s), &v), s)
		seen[v["line"]] = true
	}
	assert.Len(t, seen, 8*200)
}

func TestANilOrZeroWriterWritesNothing(t *testing.T) {
	var j *Writer
	assert.False(t, j.Write("x"))
	assert.False(t, (&Writer{}).Write("x"))
	assert.False(t, New(nil).Write("x"))
}
