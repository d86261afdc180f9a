package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Reading a container's log file (logfile.go) back as a real kubelet does for
// GET /containerLogs/{namespace}/{pod}/{container}: the API server passes the fields of
// v1.PodLogOptions as query parameters, and they mean here what they mean there:
//
//   - sinceSeconds, sinceTime (RFC 3339): lines read before max(now-sinceSeconds, sinceTime)
//     are left out; a line of exactly that time is kept.
//   - timestamps: each line starts with its time (RFC 3339, nanoseconds, fixed width) and a space.
//   - tailLines: start at the last N records of the file (sinceTime still filters them).
//   - limitBytes: stop after that many bytes of output (timestamps count), cutting a line.
//   - follow: at the end of the file, wait for more while the container runs.
//   - stream (Stdout, Stderr, All): only the lines of that stream.

// followPoll is how often a follow looks for new lines.
const followPoll = 200 * time.Millisecond

type logOptions struct {
	since      time.Time // records before it are left out; zero: none
	tailLines  int64     // start at the last tailLines records; -1: at the start
	limitBytes int64     // stop after this much output; -1: no limit
	timestamps bool
	follow     bool
	previous   bool
	stdout     bool // lines of this stream are wanted
	stderr     bool
}

// optionError is a query the kubelet refuses, with the HTTP status a real kubelet gives.
type optionError struct {
	status int
	msg    string
}

func (e *optionError) Error() string { return e.msg }

// parseLogOptions reads the query with the API's own conventions: a bool is true unless
// it is absent, "false" or "0"; "tail" is the old name of tailLines ("all": no limit).
func parseLogOptions(q url.Values, now time.Time) (logOptions, error) {
	o := logOptions{tailLines: -1, limitBytes: -1, stdout: true, stderr: true}
	bad := func(format string, args ...any) (logOptions, error) {
		return logOptions{}, &optionError{http.StatusBadRequest, fmt.Sprintf(format, args...)}
	}
	invalid := func(format string, args ...any) (logOptions, error) {
		return logOptions{}, &optionError{http.StatusUnprocessableEntity, fmt.Sprintf(format, args...)}
	}
	flag := func(name string) bool {
		v, ok := q[name]
		return ok && len(v) > 0 && v[0] != "0" && !strings.EqualFold(v[0], "false")
	}
	number := func(name string) (int64, bool, error) {
		v, ok := q[name]
		if !ok || len(v) == 0 {
			return 0, false, nil
		}
		n, err := strconv.ParseInt(v[0], 10, 64)
		return n, true, err
	}
	o.follow, o.previous, o.timestamps = flag("follow"), flag("previous"), flag("timestamps")

	if tail := q.Get("tail"); tail != "" {
		q = cloneValues(q)
		if tail == "all" {
			q.Del("tailLines")
		} else {
			q.Set("tailLines", tail)
		}
	}
	if n, ok, err := number("tailLines"); err != nil {
		return bad("tailLines: %v", err)
	} else if ok {
		if n < 0 {
			return invalid("tailLines must be at least 0, got %d", n)
		}
		o.tailLines = n
	}
	if n, ok, err := number("limitBytes"); err != nil {
		return bad("limitBytes: %v", err)
	} else if ok {
		if n < 1 {
			return invalid("limitBytes must be at least 1, got %d", n)
		}
		o.limitBytes = n
	}
	secs, haveSecs, err := number("sinceSeconds")
	if err != nil {
		return bad("sinceSeconds: %v", err)
	}
	var sinceTime metav1.Time
	haveTime := q.Get("sinceTime") != ""
	if err := sinceTime.UnmarshalQueryParameter(q.Get("sinceTime")); err != nil {
		return bad("sinceTime: %v", err)
	}
	if haveSecs && haveTime {
		return invalid("at most one of sinceTime and sinceSeconds may be given")
	}
	if haveSecs {
		if secs < 1 {
			return invalid("sinceSeconds must be at least 1, got %d", secs)
		}
		o.since = now.Add(-time.Duration(secs) * time.Second)
	}
	if haveTime {
		o.since = sinceTime.Time
	}
	switch s := q.Get("stream"); s {
	case "", "All":
	case "Stdout":
		o.stderr = false
	case "Stderr":
		o.stdout = false
	default:
		return bad("invalid stream type %q", s)
	}
	return o, nil
}

func cloneValues(q url.Values) url.Values {
	c := url.Values{}
	for k, v := range q {
		c[k] = append([]string(nil), v...)
	}
	return c
}

// logRecord is one parsed line of the log file.
type logRecord struct {
	time    time.Time
	stream  string
	partial bool
	content []byte // a whole line ends with its newline; a partial one has none
}

// parseRecord parses "<time> <stream> <tag> <content>\n".
func parseRecord(line []byte) (logRecord, error) {
	var rec logRecord
	fields := bytes.SplitN(line, []byte{' '}, 4)
	if len(fields) < 4 {
		return rec, fmt.Errorf("not a CRI log record: %q", line)
	}
	t, err := time.Parse(time.RFC3339Nano, string(fields[0]))
	if err != nil {
		return rec, fmt.Errorf("not a CRI log record: %v", err)
	}
	rec.time = t
	rec.stream = string(fields[1])
	if rec.stream != streamStdout && rec.stream != streamStderr {
		return rec, fmt.Errorf("not a CRI log record: stream %q", rec.stream)
	}
	// The tag may carry more ':'-separated parts in future; the first is P or F.
	tag, _, _ := bytes.Cut(fields[2], []byte{':'})
	rec.partial = string(tag) == "P"
	rec.content = fields[3]
	if !bytes.HasSuffix(rec.content, []byte{'\n'}) {
		rec.content = append(rec.content[:len(rec.content):len(rec.content)], '\n')
	}
	if rec.partial {
		rec.content = rec.content[:len(rec.content)-1]
	}
	return rec, nil
}

// errLimitReached: limitBytes of output have been written.
var errLimitReached = errors.New("limitBytes reached")

// logWriter writes records that pass the options, counting bytes against limitBytes.
type logWriter struct {
	w         io.Writer
	opts      logOptions
	remain    int64
	lineStart bool // the last record (written or left out) ended a line: the next one gets a timestamp
}

func newLogWriter(w io.Writer, o logOptions) *logWriter {
	lw := &logWriter{w: w, opts: o, remain: math.MaxInt64, lineStart: true}
	if o.limitBytes >= 0 {
		lw.remain = o.limitBytes
	}
	return lw
}

func (lw *logWriter) write(rec logRecord) error {
	// Whether written or left out, the record says whether the next one starts a line.
	lineStart := lw.lineStart
	lw.lineStart = !rec.partial
	if rec.time.Before(lw.opts.since) {
		return nil
	}
	if (rec.stream == streamStdout && !lw.opts.stdout) || (rec.stream == streamStderr && !lw.opts.stderr) {
		return nil
	}
	out := rec.content
	if lw.opts.timestamps && lineStart {
		out = append(rec.time.AppendFormat(nil, criTimeFormat), ' ')
		out = append(out, rec.content...)
	}
	if int64(len(out)) > lw.remain {
		out = out[:lw.remain]
	}
	n, err := lw.w.Write(out)
	lw.remain -= int64(n)
	if err != nil {
		return err
	}
	if lw.remain <= 0 {
		return errLimitReached
	}
	return nil
}

// tailStart is the offset at which the last n records of a file of this size begin.
func tailStart(r io.ReaderAt, size, n int64) (int64, error) {
	buf := make([]byte, 32*1024)
	var newlines int64
	for end := size; end > 0; {
		start := max(end-int64(len(buf)), 0)
		chunk := buf[:end-start]
		if _, err := r.ReadAt(chunk, start); err != nil && !errors.Is(err, io.EOF) {
			return 0, err
		}
		// The start of the last n records is just past the (n+1)-th newline from the end
		// (the file's final newline is the first).
		for i := len(chunk) - 1; i >= 0; i-- {
			if chunk[i] == '\n' {
				if newlines++; newlines == n+1 {
					return start + int64(i) + 1, nil
				}
			}
		}
		end = start
	}
	return 0, nil
}

// writeLogs writes the log file at path to w per the options; with follow it goes on
// while running() says the container runs, until ctx ends.
func writeLogs(ctx context.Context, path string, o logOptions, w io.Writer, running func() bool) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if o.tailLines >= 0 {
		st, err := f.Stat()
		if err != nil {
			return err
		}
		start, err := tailStart(f, st.Size(), o.tailLines)
		if err != nil {
			return err
		}
		if _, err := f.Seek(start, io.SeekStart); err != nil {
			return err
		}
	}
	// Without follow, tailLines also bounds what is read: the records written meanwhile
	// are not part of the answer.
	left := int64(-1)
	if o.tailLines >= 0 && !o.follow {
		left = o.tailLines
	}
	lw := newLogWriter(w, o)
	br := bufio.NewReader(f)
	var pending []byte // a record read only in part: its writer is not done yet
	stopped := false   // the container was seen not running: read to the end, then stop
	for left != 0 {
		chunk, err := br.ReadBytes('\n')
		pending = append(pending, chunk...)
		if errors.Is(err, io.EOF) {
			if !o.follow {
				// A last record still being written is taken as far as it goes.
				if len(pending) > 0 {
					if err := writeRecord(lw, pending); err != nil && !errors.Is(err, errLimitReached) {
						return err
					}
				}
				return nil
			}
			if stopped {
				return nil
			}
			if fl, ok := w.(http.Flusher); ok {
				fl.Flush()
			}
			if !running() {
				stopped = true // one more pass for what it wrote last
				continue
			}
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(followPoll):
			}
			continue
		}
		if err != nil {
			return err
		}
		err = writeRecord(lw, pending)
		pending = pending[:0]
		if errors.Is(err, errLimitReached) {
			return nil
		}
		if err != nil {
			return err
		}
		if left > 0 {
			left--
		}
	}
	return nil
}

// writeRecord parses one line of the file and writes it; a line that is not a record
// (which this kubelet never writes) is skipped.
func writeRecord(lw *logWriter, line []byte) error {
	rec, err := parseRecord(line)
	if err != nil {
		return nil
	}
	return lw.write(rec)
}
