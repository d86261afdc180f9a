package main

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// buildStatus computes the pod's status from what runs, keeping the fields that
// others own (qosClass, conditions set by the scheduler or controllers).
func (r *podRun) buildStatus(old *corev1.PodStatus) corev1.PodStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := *old.DeepCopy()
	st.HostIP = r.k.nodeIP
	st.HostIPs = []corev1.HostIP{{IP: r.k.nodeIP}}
	if r.ip != "" {
		st.PodIP = r.ip
		st.PodIPs = []corev1.PodIP{{IP: r.ip}}
	}
	st.StartTime = r.startTime
	st.Reason, st.Message = r.reason, r.message

	st.InitContainerStatuses = nil
	for _, c := range r.initCtrs {
		st.InitContainerStatuses = append(st.InitContainerStatuses, c.status())
	}
	st.ContainerStatuses = nil
	allReady, anyRunning, allDone, anyFailed := len(r.ctrs) > 0, false, len(r.ctrs) > 0, false
	for _, c := range r.ctrs {
		st.ContainerStatuses = append(st.ContainerStatuses, c.status())
		allReady = allReady && c.ready && c.running
		anyRunning = anyRunning || c.running || (c.waiting != nil && c.waiting.Reason == "CrashLoopBackOff")
		allDone = allDone && c.term != nil
		anyFailed = anyFailed || (c.term != nil && c.term.ExitCode != 0)
	}
	switch {
	case r.phase != "":
		st.Phase = r.phase
	case allDone && r.initDone && !r.terminated:
		st.Phase = corev1.PodSucceeded
		if anyFailed {
			st.Phase = corev1.PodFailed
		}
	case allDone && r.initDone:
		// terminating: keep what was reported
		if st.Phase == "" {
			st.Phase = corev1.PodPending
		}
	case anyRunning && r.initDone:
		st.Phase = corev1.PodRunning
	default:
		st.Phase = corev1.PodPending
	}
	if r.terminated {
		allReady = false
	}

	ready := corev1.ConditionFalse
	readyReason, readyMsg := "ContainersNotReady", notReadyMessage(r.ctrs)
	if allReady {
		ready, readyReason, readyMsg = corev1.ConditionTrue, "", ""
	}
	boolCond := func(b bool) corev1.ConditionStatus {
		if b {
			return corev1.ConditionTrue
		}
		return corev1.ConditionFalse
	}
	r.setCond(&st, corev1.PodReadyToStartContainers, boolCond(r.netReady), "", "")
	r.setCond(&st, corev1.PodInitialized, boolCond(r.initDone), "", "")
	r.setCond(&st, corev1.ContainersReady, ready, readyReason, readyMsg)
	r.setCond(&st, corev1.PodReady, ready, readyReason, readyMsg)
	if _, ok := r.conds[corev1.PodScheduled]; !ok && !hasCond(&st, corev1.PodScheduled) {
		r.setCond(&st, corev1.PodScheduled, corev1.ConditionTrue, "", "")
	}
	return st
}

func hasCond(st *corev1.PodStatus, t corev1.PodConditionType) bool {
	for _, c := range st.Conditions {
		if c.Type == t {
			return true
		}
	}
	return false
}

func notReadyMessage(ctrs []*ctr) string {
	var names []string
	var notes []string
	for _, c := range ctrs {
		if !(c.ready && c.running) {
			names = append(names, c.spec.Name)
		}
		if p := c.spec.ReadinessProbe; p != nil && (p.Exec != nil || p.GRPC != nil) {
			notes = append(notes, fmt.Sprintf("container %s: exec and grpc readiness probes are not supported by the process kubelet", c.spec.Name))
		}
	}
	msg := "containers with unready status: [" + strings.Join(names, " ") + "]"
	if len(notes) > 0 {
		msg += "; " + strings.Join(notes, "; ")
	}
	return msg
}

func (r *podRun) setCond(st *corev1.PodStatus, t corev1.PodConditionType, s corev1.ConditionStatus, reason, msg string) {
	prev, ok := r.conds[t]
	if !ok || prev.Status != s {
		prev = corev1.PodCondition{Type: t, Status: s, LastTransitionTime: nowSec()}
	}
	prev.Reason, prev.Message = reason, msg
	r.conds[t] = prev
	for i := range st.Conditions {
		if st.Conditions[i].Type == t {
			st.Conditions[i] = prev
			return
		}
	}
	st.Conditions = append(st.Conditions, prev)
}

func (c *ctr) status() corev1.ContainerStatus {
	started := c.running
	cs := corev1.ContainerStatus{
		Name: c.spec.Name, Image: c.spec.Image, ImageID: "process://" + c.program, ContainerID: c.id,
		Ready: c.ready && c.running, RestartCount: c.restarts, Started: &started,
	}
	switch {
	case c.running:
		cs.State.Running = &corev1.ContainerStateRunning{StartedAt: c.startedAt}
	case c.waiting != nil:
		cs.State.Waiting = c.waiting.DeepCopy()
	case c.term != nil:
		cs.State.Terminated = c.term.DeepCopy()
	default:
		cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}
	}
	if c.last != nil {
		cs.LastTerminationState.Terminated = c.last.DeepCopy()
	}
	return cs
}

// probe runs the readiness and liveness probes of a container while it runs.
func (r *podRun) probe(c *ctr) {
	defer r.wg.Done()
	rp, lp := c.spec.ReadinessProbe, c.spec.LivenessProbe
	var lastStart time.Time
	var nextReady, nextLive time.Time
	readyOK, readyFail, liveFail := 0, 0, 0
	for r.sleep(200 * time.Millisecond) {
		r.mu.Lock()
		running, startedAt, ip, proc, everReady := c.running, c.startedAt.Time, r.ip, c.proc, c.everReady
		r.mu.Unlock()
		if !running {
			continue
		}
		now := time.Now()
		if !startedAt.Equal(lastStart) {
			lastStart = startedAt
			readyOK, readyFail, liveFail = 0, 0, 0
			if rp != nil {
				nextReady = startedAt.Add(time.Duration(rp.InitialDelaySeconds) * time.Second)
			}
			if lp != nil {
				nextLive = startedAt.Add(time.Duration(lp.InitialDelaySeconds) * time.Second)
			}
		}
		if rp == nil {
			r.setReady(c, true)
		} else if !now.Before(nextReady) {
			nextReady = now.Add(period(rp))
			if err := runProbe(rp, ip, &c.spec); err == nil {
				readyOK++
				readyFail = 0
				if readyOK >= int(max32(rp.SuccessThreshold, 1)) {
					r.setReady(c, true)
				}
			} else {
				readyFail++
				readyOK = 0
				if readyFail == 1 || readyFail%10 == 0 {
					r.event(corev1.EventTypeWarning, "Unhealthy", "Readiness probe failed: "+err.Error())
				}
				if readyFail >= int(max32(rp.FailureThreshold, 3)) || !everReady {
					r.setReady(c, false)
				}
			}
		}
		if lp != nil && !now.Before(nextLive) {
			nextLive = now.Add(period(lp))
			if err := runProbe(lp, ip, &c.spec); err == nil {
				liveFail = 0
			} else if liveFail++; liveFail >= int(max32(lp.FailureThreshold, 3)) {
				if lf, err2 := r.containerLog(c); err2 == nil {
					lf.note("liveness probe failed: %v; restarting", err)
				}
				r.event(corev1.EventTypeWarning, "Unhealthy", fmt.Sprintf("Liveness probe failed: %v; restarting container %s", err, c.spec.Name))
				_ = syscall.Kill(-proc.Pid, syscall.SIGKILL)
				liveFail = 0
			}
		}
	}
}

func (r *podRun) setReady(c *ctr, ready bool) {
	r.mu.Lock()
	changed := c.ready != ready
	c.ready = ready
	if ready {
		c.everReady = true
	}
	r.mu.Unlock()
	if changed {
		r.signal()
	}
}

func max32(v, def int32) int32 {
	if v <= 0 {
		return def
	}
	return v
}

func period(p *corev1.Probe) time.Duration {
	return time.Duration(max32(p.PeriodSeconds, 10)) * time.Second
}

func resolvePort(port intstr.IntOrString, c *corev1.Container) (int, error) {
	if port.Type == intstr.Int {
		return port.IntValue(), nil
	}
	for _, p := range c.Ports {
		if p.Name == port.StrVal {
			return int(p.ContainerPort), nil
		}
	}
	if n, err := strconv.Atoi(port.StrVal); err == nil {
		return n, nil
	}
	return 0, fmt.Errorf("port %q not found", port.StrVal)
}

// runProbe performs one httpGet or tcpSocket probe against the pod's address.
func runProbe(p *corev1.Probe, ip string, c *corev1.Container) error {
	timeout := time.Duration(max32(p.TimeoutSeconds, 1)) * time.Second
	switch {
	case p.HTTPGet != nil:
		port, err := resolvePort(p.HTTPGet.Port, c)
		if err != nil {
			return err
		}
		host := p.HTTPGet.Host
		if host == "" {
			host = ip
		}
		scheme := "http"
		if p.HTTPGet.Scheme == corev1.URISchemeHTTPS {
			scheme = "https"
		}
		path := p.HTTPGet.Path
		if !strings.HasPrefix(path, "/") {
			path = "/" + path
		}
		req, err := http.NewRequest(http.MethodGet, scheme+"://"+net.JoinHostPort(host, strconv.Itoa(port))+path, nil)
		if err != nil {
			return err
		}
		for _, h := range p.HTTPGet.HTTPHeaders {
			req.Header.Add(h.Name, h.Value)
		}
		req.Header.Set("User-Agent", "kube-probe/1.36")
		client := &http.Client{Timeout: timeout, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, DisableKeepAlives: true, Proxy: nil}}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode < 200 || resp.StatusCode >= 400 {
			return fmt.Errorf("HTTP probe failed with statuscode: %d", resp.StatusCode)
		}
		return nil
	case p.TCPSocket != nil:
		port, err := resolvePort(p.TCPSocket.Port, c)
		if err != nil {
			return err
		}
		host := p.TCPSocket.Host
		if host == "" {
			host = ip
		}
		conn, err := net.DialTimeout("tcp", net.JoinHostPort(host, strconv.Itoa(port)), timeout)
		if err != nil {
			return err
		}
		return conn.Close()
	default:
		return fmt.Errorf("exec and grpc probes are not supported by the process kubelet")
	}
}

// launcher builds the command that runs argv inside the pod's network namespace and a
// private mount namespace (ip netns exec unshares one and makes / a slave), with the
// pod's volumes bind-mounted at their mountPaths.
func (r *podRun) launcher(c *ctr, vols map[string]string, argv, env []string) (*exec.Cmd, error) {
	var b strings.Builder
	b.WriteString("set -e\n")
	// Mount points that do not exist are made on the host's file system (a bind mount
	// needs one); the top-most made path is recorded so that scripts/testenv down can
	// remove what stayed empty.
	fmt.Fprintf(&b, "mkpoint() { p=$1; top=; while [ ! -e \"$p\" ]; do top=$p; p=$(dirname \"$p\"); done; "+
		"if [ -n \"$top\" ]; then echo \"$top\" >> %s; fi; }\n", shq(filepath.Join(r.k.stateDir, "created-mountpoints")))
	r.mu.Lock()
	ns, resolv := r.netns, r.resolvConf
	r.mu.Unlock()
	if resolv != "" {
		// The Pod's DNS settings (dns.go) over the host's file, in this mount namespace only.
		fmt.Fprintf(&b, "mkpoint /etc/resolv.conf\n[ -e /etc/resolv.conf ] || : > /etc/resolv.conf\n")
		fmt.Fprintf(&b, "mount --bind %s /etc/resolv.conf\n", shq(resolv))
	}
	for _, m := range c.spec.VolumeMounts {
		src, ok := vols[m.Name]
		if !ok {
			return nil, fmt.Errorf("volume mount %q: no such volume", m.Name)
		}
		if m.SubPath != "" {
			src = filepath.Join(src, m.SubPath)
		}
		dst := m.MountPath
		fmt.Fprintf(&b, "mkpoint %s\n", shq(dst))
		fmt.Fprintf(&b, "if [ -d %s ]; then mkdir -p %s; else mkdir -p %s; [ -e %s ] || : > %s; fi\n",
			shq(src), shq(dst), shq(filepath.Dir(dst)), shq(dst), shq(dst))
		fmt.Fprintf(&b, "mount --bind %s %s\n", shq(src), shq(dst))
		if m.ReadOnly {
			fmt.Fprintf(&b, "mount -o remount,bind,ro %s\n", shq(dst))
		}
	}
	if c.spec.WorkingDir != "" {
		fmt.Fprintf(&b, "cd %s\n", shq(c.spec.WorkingDir))
	}
	b.WriteString("exec \"$@\"\n")
	args := append([]string{"netns", "exec", ns, "/bin/sh", "-c", b.String(), "sh"}, argv...)
	cmd := exec.Command(r.k.ipBin, args...)
	cmd.Env = env
	cmd.Dir = r.dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	return cmd, nil
}

func shq(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// nowSec is the current time at the API's one-second precision, so that a status
// that did not change compares equal to what the API server returns.
func nowSec() metav1.Time { return metav1.NewTime(time.Now().Truncate(time.Second)) }
