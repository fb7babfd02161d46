package jsonlines

import (
	"bytes"
	"encoding/json"
	"io"
	"sync"
)

// maxPooled is the capacity above which a buffer is not kept for the next line: one unusually
// long line must not hold its memory for good.
const maxPooled = 64 << 10

// Writer writes JSON lines to w; safe for concurrent use. The zero Writer, and a nil one,
// write nothing.
type Writer struct {
	mu sync.Mutex
	w  io.Writer
	// buffers hold lines being encoded (*bytes.Buffer): w does not keep what it is given
	// (io.Writer), so a buffer is free again once written.
	buffers sync.Pool
}

// New returns a Writer writing to w.
func New(w io.Writer) *Writer {
	return &Writer{w: w, buffers: sync.Pool{New: func() any { return new(bytes.Buffer) }}}
}

// Write encodes v as encoding/json does, then writes it and a newline with one Write. It
// reports whether v could be encoded; a write error is dropped, because logging must not fail
// a request.
func (j *Writer) Write(v any) bool {
	if j == nil || j.w == nil {
		return false
	}
	buf := j.buffers.Get().(*bytes.Buffer)
	defer j.release(buf)
	buf.Reset()
	if err := json.NewEncoder(buf).Encode(v); err != nil {
		return false
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	_, _ = j.w.Write(buf.Bytes())
	return true
}

func (j *Writer) release(buf *bytes.Buffer) {
	if buf.Cap() <= maxPooled {
		j.buffers.Put(buf)
	}
}
