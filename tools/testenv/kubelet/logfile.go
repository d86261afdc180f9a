package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"time"
)

// A container's log file in the CRI logging format, the one container runtimes write and a
// real kubelet reads back for `kubectl logs`: one record a line,
//
//	2026-12-01T11:22:33.123456789Z stdout F a whole line
//	2026-12-01T11:22:33.123456789Z stderr P the first 16 KiB of a longer line
//
// Tag F ends a line of the program's output; P holds part of a line that goes on in the
// next record. Each record carries the time the kubelet read it from the process, so that
// sinceTime/sinceSeconds/timestamps work per line. Every run of a container appends to
// the same file (logs of the previous run are not kept apart).

const (
	// criTimeFormat is RFC 3339 with nanoseconds at a fixed width, as the runtimes write it.
	criTimeFormat = "2006-01-02T15:04:05.000000000Z07:00"
	// maxRecordBytes is the most of one output line that one record holds; a longer
	// line is split into P records (containerd splits at 16 KiB too).
	maxRecordBytes = 16 * 1024

	streamStdout = "stdout"
	streamStderr = "stderr"
)

// formatRecord is one record of the log file, newline included.
func formatRecord(t time.Time, stream string, partial bool, content []byte) []byte {
	tag := "F"
	if partial {
		tag = "P"
	}
	b := make([]byte, 0, len(criTimeFormat)+len(stream)+len(content)+5)
	b = t.UTC().AppendFormat(b, criTimeFormat)
	b = append(b, ' ')
	b = append(b, stream...)
	b = append(b, ' ')
	b = append(b, tag...)
	b = append(b, ' ')
	b = append(b, content...)
	return append(b, '\n')
}

// logFile is one container's log, written by its stdout and stderr copiers and by the
// kubelet's own notes; each record goes to the file in one write.
type logFile struct {
	mu sync.Mutex
	f  *os.File
}

func openLogFile(path string) (*logFile, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	return &logFile{f: f}, nil
}

func (l *logFile) record(stream string, partial bool, content []byte) error {
	rec := formatRecord(time.Now(), stream, partial, content)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return os.ErrClosed
	}
	_, err := l.f.Write(rec)
	return err
}

// note appends a line of the kubelet's own (e.g. why it restarts the container) on stderr.
func (l *logFile) note(format string, args ...any) {
	_ = l.record(streamStderr, false, []byte("[process kubelet] "+fmt.Sprintf(format, args...)))
}

// copyStream turns what a process writes on one stream into records, until the stream
// ends. A last line without a newline is kept as a whole line, as containerd does.
func (l *logFile) copyStream(r io.Reader, stream string) {
	br := bufio.NewReaderSize(r, maxRecordBytes)
	for {
		line, err := br.ReadSlice('\n')
		switch {
		case err == nil:
			_ = l.record(stream, false, line[:len(line)-1])
		case errors.Is(err, bufio.ErrBufferFull):
			_ = l.record(stream, true, line)
		default: // io.EOF, or the pipe failed
			if len(line) > 0 {
				_ = l.record(stream, false, line)
			}
			return
		}
	}
}

func (l *logFile) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f != nil {
		_ = l.f.Close()
		l.f = nil
	}
}

// startLogged starts cmd with its stdout and stderr copied, line by line, into lf through
// pipes. The returned drained waits until the copies reached the end of the output, but
// at most 2 s: a child that the process left running may hold its output open.
func startLogged(cmd *exec.Cmd, lf *logFile) (drained func(), err error) {
	type pipe struct {
		r, w   *os.File
		stream string
	}
	var pipes []pipe
	for _, stream := range []string{streamStdout, streamStderr} {
		pr, pw, err := os.Pipe()
		if err != nil {
			for _, p := range pipes {
				p.r.Close()
				p.w.Close()
			}
			return nil, err
		}
		pipes = append(pipes, pipe{pr, pw, stream})
	}
	cmd.Stdout, cmd.Stderr = pipes[0].w, pipes[1].w
	err = cmd.Start()
	for _, p := range pipes {
		p.w.Close() // the process has its own copy
	}
	if err != nil {
		for _, p := range pipes {
			p.r.Close()
		}
		return nil, err
	}
	var wg sync.WaitGroup
	for _, p := range pipes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer p.r.Close()
			lf.copyStream(p.r, p.stream)
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	return func() {
		select {
		case <-done:
		case <-time.After(2 * time.Second):
		}
	}, nil
}
