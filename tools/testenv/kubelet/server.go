package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
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

// containerLogs serves /containerLogs/{namespace}/{pod}/{container} with the query
// parameters of v1.PodLogOptions (see logs.go).
func (k *kubelet) containerLogs(w http.ResponseWriter, req *http.Request) {
	parts := strings.Split(strings.TrimPrefix(req.URL.Path, "/containerLogs/"), "/")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
		http.Error(w, "want /containerLogs/{namespace}/{pod}/{container}", http.StatusBadRequest)
		return
	}
	opts, err := parseLogOptions(req.URL.Query(), time.Now())
	if err != nil {
		status := http.StatusBadRequest
		var oe *optionError
		if errors.As(err, &oe) {
			status = oe.status
		}
		http.Error(w, err.Error(), status)
		return
	}
	if opts.previous {
		http.Error(w, "previous logs are not kept apart: the log of a restarted container holds every run", http.StatusBadRequest)
		return
	}
	r := k.findPod(parts[0], parts[1])
	if r == nil {
		http.Error(w, fmt.Sprintf("pod %q does not exist", parts[1]), http.StatusNotFound)
		return
	}
	c := r.container(parts[2])
	if c == nil {
		http.Error(w, fmt.Sprintf("container %q not found in pod %q", parts[2], parts[1]), http.StatusNotFound)
		return
	}
	if _, err := os.Stat(c.logPath); os.IsNotExist(err) {
		// Never started: what a real kubelet answers for a waiting container.
		http.Error(w, fmt.Sprintf("container %q in pod %q is waiting to start: %s", parts[2], parts[1], r.waitingReason(c)), http.StatusBadRequest)
		return
	}
	running := func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		return c.running
	}
	w.Header().Set("Content-Type", "text/plain")
	if err := writeLogs(req.Context(), c.logPath, opts, w, running); err != nil {
		log.Printf("logs of %s/%s/%s: %v", parts[0], parts[1], parts[2], err)
	}
}
