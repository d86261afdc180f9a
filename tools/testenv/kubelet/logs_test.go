package main

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

var t0 = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

type line struct {
	at      time.Duration // after t0
	stream  string
	partial bool
	text    string
}

// logFileOf writes records as the kubelet does and returns the file's path.
func logFileOf(t *testing.T, lines ...line) string {
	t.Helper()
	var b []byte
	for _, l := range lines {
		b = append(b, formatRecord(t0.Add(l.at), l.stream, l.partial, []byte(l.text))...)
	}
	path := filepath.Join(t.TempDir(), "c.log")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func mustOptions(t *testing.T, query string) logOptions {
	t.Helper()
	q, err := url.ParseQuery(query)
	if err != nil {
		t.Fatal(err)
	}
	o, err := parseLogOptions(q, t0.Add(time.Hour))
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return o
}

func logsOf(t *testing.T, path, query string) string {
	t.Helper()
	var out bytes.Buffer
	notRunning := func() bool { return false }
	if err := writeLogs(context.Background(), path, mustOptions(t, query), &out, notRunning); err != nil {
		t.Fatal(err)
	}
	return out.String()
}

func TestRecordsRoundTripInCRIFormat(t *testing.T) {
	rec := formatRecord(t0.Add(1500*time.Microsecond), streamStderr, false, []byte("hello world"))
	if got, want := string(rec), "2026-12-01T10:00:00.001500000Z stderr F hello world\n"; got != want {
		t.Fatalf("record %q, want %q", got, want)
	}
	r, err := parseRecord(rec)
	if err != nil {
		t.Fatal(err)
	}
	if !r.time.Equal(t0.Add(1500*time.Microsecond)) || r.stream != streamStderr || r.partial || string(r.content) != "hello world\n" {
		t.Fatalf("parsed %+v", r)
	}
	p, err := parseRecord(formatRecord(t0, streamStdout, true, []byte("part")))
	if err != nil {
		t.Fatal(err)
	}
	if !p.partial || string(p.content) != "part" {
		t.Fatalf("a partial record keeps no newline: %+v", p)
	}
	for _, bad := range []string{"plain output\n", "2026-12-01T10:00:00Z stdin F x\n", "2026-12-01T10:00:00Z stdout\n"} {
		if _, err := parseRecord([]byte(bad)); err == nil {
			t.Errorf("%q parsed as a record", bad)
		}
	}
}

func TestCopyStreamSplitsLongLinesAndKeepsAnUnendedLastLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.log")
	lf, err := openLogFile(path)
	if err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("x", maxRecordBytes+10)
	lf.copyStream(strings.NewReader("one\n"+long+"\nlast"), streamStdout)
	lf.note("restarting")
	lf.close()
	data, _ := os.ReadFile(path)
	var got []string
	for _, l := range strings.SplitAfter(strings.TrimSuffix(string(data), "\n"), "\n") {
		r, err := parseRecord([]byte(l))
		if err != nil {
			t.Fatal(err)
		}
		tag := "F"
		if r.partial {
			tag = "P"
		}
		got = append(got, r.stream+" "+tag+" "+strings.TrimSuffix(string(r.content), "\n"))
	}
	want := []string{
		"stdout F one",
		"stdout P " + long[:maxRecordBytes],
		"stdout F " + long[maxRecordBytes:],
		"stdout F last",
		"stderr F [process kubelet] restarting",
	}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("records\n%q\nwant\n%q", got, want)
	}
	// Read back, the long line is whole again.
	if out := logsOf(t, path, ""); out != "one\n"+long+"\nlast\n[process kubelet] restarting\n" {
		t.Fatalf("logs %q", out)
	}
}

func TestParseLogOptionsFollowsTheAPIConventions(t *testing.T) {
	now := t0.Add(time.Hour)
	o := mustOptions(t, "follow=true&timestamps=1&previous=false&tailLines=10&limitBytes=500")
	if !o.follow || !o.timestamps || o.previous || o.tailLines != 10 || o.limitBytes != 500 {
		t.Fatalf("%+v", o)
	}
	if o := mustOptions(t, "follow=&timestamps=FALSE&tail=7"); !o.follow || o.timestamps || o.tailLines != 7 {
		t.Fatalf("an empty bool is true, FALSE is false, tail is tailLines: %+v", o)
	}
	if o := mustOptions(t, "tail=all&tailLines=3"); o.tailLines != -1 {
		t.Fatalf("tail=all means every line: %+v", o)
	}
	if o := mustOptions(t, ""); o.tailLines != -1 || o.limitBytes != -1 || !o.since.IsZero() || !o.stdout || !o.stderr {
		t.Fatalf("defaults: %+v", o)
	}
	if o := mustOptions(t, "sinceSeconds=60"); !o.since.Equal(now.Add(-time.Minute)) {
		t.Fatalf("sinceSeconds: %v", o.since)
	}
	if o := mustOptions(t, "sinceTime=2026-12-01T10:00:05Z"); !o.since.Equal(t0.Add(5 * time.Second)) {
		t.Fatalf("sinceTime: %v", o.since)
	}
	if o := mustOptions(t, "stream=Stderr"); o.stdout || !o.stderr {
		t.Fatalf("stream: %+v", o)
	}
	for query, status := range map[string]int{
		"tailLines=x":         http.StatusBadRequest,
		"sinceTime=yesterday": http.StatusBadRequest,
		"stream=Stdin":        http.StatusBadRequest,
		"tailLines=-1":        http.StatusUnprocessableEntity,
		"limitBytes=0":        http.StatusUnprocessableEntity,
		"sinceSeconds=0":      http.StatusUnprocessableEntity,
		"sinceSeconds=5&sinceTime=2026-12-01T10:00:05Z": http.StatusUnprocessableEntity,
	} {
		q, _ := url.ParseQuery(query)
		_, err := parseLogOptions(q, now)
		var oe *optionError
		if !errors.As(err, &oe) || oe.status != status {
			t.Errorf("%s: got %v, want status %d", query, err, status)
		}
	}
}

func TestSinceTimeKeepsLinesFromThatTimeOn(t *testing.T) {
	path := logFileOf(t,
		line{0, streamStdout, false, "before"},
		line{5*time.Second - time.Nanosecond, streamStdout, false, "just before"},
		line{5 * time.Second, streamStdout, false, "at"},
		line{6 * time.Second, streamStderr, false, "after"},
	)
	if got := logsOf(t, path, "sinceTime=2026-12-01T10:00:05Z"); got != "at\nafter\n" {
		t.Fatalf("sinceTime: %q", got)
	}
	got := logsOf(t, path, "sinceTime=2026-12-01T10:00:05Z&timestamps=true")
	want := "2026-12-01T10:00:05.000000000Z at\n2026-12-01T10:00:06.000000000Z after\n"
	if got != want {
		t.Fatalf("timestamps: %q, want %q", got, want)
	}
	// sinceSeconds counts back from now (t0 + 1h in these tests).
	if got := logsOf(t, path, "sinceSeconds=3595"); got != "at\nafter\n" {
		t.Fatalf("sinceSeconds: %q", got)
	}
	if got := logsOf(t, path, "stream=Stdout"); got != "before\njust before\nat\n" {
		t.Fatalf("stream=Stdout: %q", got)
	}
}

func TestTailLinesCountsRecordsFromTheEnd(t *testing.T) {
	path := logFileOf(t,
		line{0, streamStdout, false, "a"},
		line{1 * time.Second, streamStdout, false, "b"},
		line{2 * time.Second, streamStdout, false, "c"},
	)
	for query, want := range map[string]string{
		"tailLines=0":  "",
		"tailLines=2":  "b\nc\n",
		"tailLines=10": "a\nb\nc\n",
		// tailLines picks the records first; sinceTime then filters them.
		"tailLines=2&sinceTime=2026-12-01T10:00:02Z": "c\n",
	} {
		if got := logsOf(t, path, query); got != want {
			t.Errorf("%s: %q, want %q", query, got, want)
		}
	}
}

func TestTailStartFindsLinesAcrossReadBlocks(t *testing.T) {
	var b []byte
	for i := 0; i < 5000; i++ { // ~200 KiB: several 32 KiB blocks
		b = append(b, formatRecord(t0, streamStdout, false, []byte(strings.Repeat("y", i%7)))...)
	}
	r := bytes.NewReader(b)
	size := int64(len(b))
	for _, n := range []int64{0, 1, 999, 4999, 5000, 6000} {
		start, err := tailStart(r, size, n)
		if err != nil {
			t.Fatal(err)
		}
		if got := int64(bytes.Count(b[start:], []byte{'\n'})); got != min(n, 5000) || (start > 0 && b[start-1] != '\n') {
			t.Errorf("tail %d: start %d leaves %d lines", n, start, got)
		}
	}
}

func TestLimitBytesCountsTimestampsAndCutsTheLine(t *testing.T) {
	path := logFileOf(t,
		line{0, streamStdout, false, "0123456789"},
		line{time.Second, streamStdout, false, "abcdefghij"},
	)
	if got := logsOf(t, path, "limitBytes=15"); got != "0123456789\nabcd" {
		t.Fatalf("limitBytes: %q", got)
	}
	if got := logsOf(t, path, "limitBytes=35&timestamps=true"); got != "2026-12-01T10:00:00.000000000Z 0123" {
		t.Fatalf("limitBytes with timestamps: %q", got)
	}
}

func TestPartialRecordsGetOneTimestampPerLine(t *testing.T) {
	path := logFileOf(t,
		line{0, streamStdout, true, "first half,"},
		line{time.Second, streamStdout, false, " second half"},
		line{2 * time.Second, streamStdout, false, "next"},
	)
	got := logsOf(t, path, "timestamps=true")
	want := "2026-12-01T10:00:00.000000000Z first half, second half\n2026-12-01T10:00:02.000000000Z next\n"
	if got != want {
		t.Fatalf("%q, want %q", got, want)
	}
}

// syncBuffer is a bytes.Buffer safe to read while writeLogs writes it.
type syncBuffer struct {
	mu  chan struct{}
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu <- struct{}{}
	defer func() { <-b.mu }()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu <- struct{}{}
	defer func() { <-b.mu }()
	return b.buf.String()
}

func TestFollowSendsNewLinesUntilTheContainerStops(t *testing.T) {
	path := logFileOf(t, line{0, streamStdout, false, "old"})
	lf, err := openLogFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer lf.close()
	var running atomic.Bool
	running.Store(true)
	out := &syncBuffer{mu: make(chan struct{}, 1)}
	done := make(chan error, 1)
	go func() {
		done <- writeLogs(context.Background(), path, mustOptions(t, "follow=true"), out, running.Load)
	}()
	_ = lf.record(streamStdout, false, []byte("new"))
	deadline := time.Now().Add(5 * time.Second)
	for out.String() != "old\nnew\n" && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if got := out.String(); got != "old\nnew\n" {
		t.Fatalf("followed %q", got)
	}
	// The last words of a stopping container still come, then the follow ends.
	_ = lf.record(streamStderr, false, []byte("bye"))
	running.Store(false)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("follow did not end after the container stopped")
	}
	if got := out.String(); got != "old\nnew\nbye\n" {
		t.Fatalf("followed %q", got)
	}
}
