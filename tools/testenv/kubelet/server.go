package main

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// serve is the kubelet API on nodeIP:port over HTTPS, for the API server's
// `kubectl logs`. Clients must present a certificate signed by the cluster CA.
func (k *kubelet) serve(port int, certFile, keyFile string) error {
	ca, err := os.ReadFile(k.caFile)
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return fmt.Errorf("no certificates in %s", k.caFile)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") })
	mux.HandleFunc("/containerLogs/", k.containerLogs)
	mux.HandleFunc("/", func(w http.ResponseWriter, req *http.Request) {
		http.Error(w, req.URL.Path+" is not supported by the process kubelet (only /containerLogs)", http.StatusNotImplemented)
	})
	srv := &http.Server{
		Addr:              net.JoinHostPort(k.nodeIP, strconv.Itoa(port)),
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		TLSConfig:         &tls.Config{ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12},
		ErrorLog:          log.New(io.Discard, "", 0),
	}
	return srv.ListenAndServeTLS(certFile, keyFile)
}

// containerLogs serves /containerLogs/{namespace}/{pod}/{container}?follow&tailLines&limitBytes.
func (k *kubelet) containerLogs(w http.ResponseWriter, req *http.Request) {
	parts := strings.Split(strings.TrimPrefix(req.URL.Path, "/containerLogs/"), "/")
	if len(parts) != 3 {
		http.Error(w, "want /containerLogs/{namespace}/{pod}/{container}", http.StatusBadRequest)
		return
	}
	q := req.URL.Query()
	if q.Get("previous") == "true" {
		http.Error(w, "previous logs are not kept apart: the log of a restarted container holds every run", http.StatusBadRequest)
		return
	}
	r := k.findPod(parts[0], parts[1])
	if r == nil {
		http.Error(w, fmt.Sprintf("pod %s/%s is not on this node", parts[0], parts[1]), http.StatusNotFound)
		return
	}
	var path string
	r.mu.Lock()
	for _, c := range append(append([]*ctr{}, r.initCtrs...), r.ctrs...) {
		if c.spec.Name == parts[2] {
			path = c.logPath
		}
	}
	r.mu.Unlock()
	if path == "" {
		http.Error(w, fmt.Sprintf("container %q not in pod %s/%s", parts[2], parts[0], parts[1]), http.StatusNotFound)
		return
	}
	data, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	offset := int64(len(data))
	if n, err := strconv.Atoi(q.Get("tailLines")); err == nil && n >= 0 {
		data = tailLines(data, n)
	}
	limit := int64(-1)
	if n, err := strconv.ParseInt(q.Get("limitBytes"), 10, 64); err == nil && n > 0 {
		limit = n
		if int64(len(data)) > n {
			data = data[:n]
		}
	}
	w.Header().Set("Content-Type", "text/plain")
	_, _ = w.Write(data)
	if q.Get("follow") != "true" {
		return
	}
	sent := int64(len(data))
	flusher, _ := w.(http.Flusher)
	for {
		if flusher != nil {
			flusher.Flush()
		}
		select {
		case <-req.Context().Done():
			return
		case <-r.done:
			return
		case <-time.After(250 * time.Millisecond):
		}
		f, err := os.Open(path)
		if err != nil {
			continue
		}
		_, _ = f.Seek(offset, io.SeekStart)
		chunk, _ := io.ReadAll(bufio.NewReader(f))
		f.Close()
		offset += int64(len(chunk))
		if limit >= 0 && sent+int64(len(chunk)) > limit {
			chunk = chunk[:limit-sent]
		}
		sent += int64(len(chunk))
		_, _ = w.Write(chunk)
		if limit >= 0 && sent >= limit {
			return
		}
	}
}

func tailLines(data []byte, n int) []byte {
	if n == 0 {
		return nil
	}
	lines := bytes.SplitAfter(data, []byte("\n"))
	if len(lines) > 0 && len(lines[len(lines)-1]) == 0 {
		lines = lines[:len(lines)-1]
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return bytes.Join(lines, nil)
}

// logWriter appends a kubelet note to a container's log.
func logWriter(c *ctr) io.Writer {
	f, err := os.OpenFile(c.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return io.Discard
	}
	return &closingWriter{f}
}

type closingWriter struct{ f *os.File }

func (w *closingWriter) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	w.f.Close()
	return n, err
}
