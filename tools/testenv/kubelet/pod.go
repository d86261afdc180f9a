package main

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// podRun is one Pod on this node: its network namespace, files, container processes
// and the status reported for it.
type podRun struct {
	k               *kubelet
	uid             types.UID
	namespace, name string
	dir             string
	ctx             context.Context
	cancel          context.CancelFunc

	mu         sync.Mutex
	pod        *corev1.Pod
	ip, netns  string
	startTime  *metav1.Time
	initCtrs   []*ctr
	ctrs       []*ctr
	netReady   bool
	initDone   bool
	terminated bool
	phase      corev1.PodPhase // set when the kubelet decides the pod failed outright
	reason     string
	message    string
	conds      map[corev1.PodConditionType]corev1.PodCondition
	vols       map[string]string
	resolvConf string // the Pod's own resolv.conf, bind-mounted over /etc/resolv.conf; "": the host's

	changed      chan struct{}
	stopping     chan struct{}
	stopOnce     sync.Once
	grace        time.Duration
	deleteObject bool
	done         chan struct{}
	wg           sync.WaitGroup
}

// ctr is one container: a supervised process.
type ctr struct {
	spec      corev1.Container
	init      bool
	program   string
	logPath   string
	log       *logFile // opened when the container first starts
	proc      *os.Process
	exited    chan struct{}
	running   bool
	startedAt metav1.Time
	restarts  int32
	id        string
	term      *corev1.ContainerStateTerminated // final state: will not restart
	last      *corev1.ContainerStateTerminated
	waiting   *corev1.ContainerStateWaiting
	ready     bool
	everReady bool
}

func newPodRun(k *kubelet, p *corev1.Pod) *podRun {
	ctx, cancel := context.WithCancel(k.ctx)
	r := &podRun{
		k: k, uid: p.UID, namespace: p.Namespace, name: p.Name, pod: p.DeepCopy(),
		dir: filepath.Join(k.stateDir, "pods", string(p.UID)),
		ctx: ctx, cancel: cancel,
		conds:   map[corev1.PodConditionType]corev1.PodCondition{},
		changed: make(chan struct{}, 1), stopping: make(chan struct{}), done: make(chan struct{}),
	}
	for _, c := range p.Spec.InitContainers {
		r.initCtrs = append(r.initCtrs, &ctr{spec: c, init: true, logPath: filepath.Join(r.dir, c.Name+".log"),
			waiting: &corev1.ContainerStateWaiting{Reason: "PodInitializing"}})
	}
	for _, c := range p.Spec.Containers {
		r.ctrs = append(r.ctrs, &ctr{spec: c, logPath: filepath.Join(r.dir, c.Name+".log"),
			waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}})
	}
	return r
}

func (r *podRun) signal() {
	select {
	case r.changed <- struct{}{}:
	default:
	}
}

func (r *podRun) isStopping() bool {
	select {
	case <-r.stopping:
		return true
	default:
		return false
	}
}

// sleep waits d or until the pod is being stopped; false when stopping.
func (r *podRun) sleep(d time.Duration) bool {
	select {
	case <-r.stopping:
		return false
	case <-time.After(d):
		return true
	}
}

func (r *podRun) update(p *corev1.Pod) {
	r.mu.Lock()
	r.pod = p.DeepCopy()
	r.mu.Unlock()
	if p.DeletionTimestamp != nil {
		grace := int64(30)
		if p.DeletionGracePeriodSeconds != nil {
			grace = *p.DeletionGracePeriodSeconds
		}
		r.terminate(time.Duration(grace)*time.Second, true)
	}
}

// gone: the object was removed from the API (e.g. a forced delete).
func (r *podRun) gone() { r.terminate(0, false) }

// shutdown: the kubelet stops; stop processes quickly, leave the objects.
func (r *podRun) shutdown() {
	grace := 5 * time.Second
	r.mu.Lock()
	if g := r.pod.Spec.TerminationGracePeriodSeconds; g != nil && time.Duration(*g)*time.Second < grace {
		grace = time.Duration(*g) * time.Second
	}
	r.mu.Unlock()
	r.terminate(grace, false)
	<-r.done
}

func (r *podRun) terminate(grace time.Duration, deleteObject bool) {
	r.stopOnce.Do(func() {
		r.mu.Lock()
		r.grace = grace
		r.deleteObject = deleteObject
		r.mu.Unlock()
		close(r.stopping)
	})
}

func (r *podRun) run() {
	defer close(r.done)
	defer r.k.forget(r.uid)
	defer r.cancel()
	if err := os.MkdirAll(r.dir, 0o755); err != nil {
		log.Printf("pod %s/%s: %v", r.namespace, r.name, err)
	}
	go r.statusLoop()

	// Images first: a Pod whose image has no local program never starts.
	notRunnable := ""
	for _, c := range append(append([]*ctr{}, r.initCtrs...), r.ctrs...) {
		prog, err := r.k.resolveProgram(c.spec.Image)
		if err == nil {
			_, err = commandLine(prog, c.spec.Image, c.spec.Command, c.spec.Args)
		}
		r.mu.Lock()
		if err != nil {
			c.waiting = &corev1.ContainerStateWaiting{Reason: "ImageNotRunnable", Message: err.Error()}
			if notRunnable == "" {
				notRunnable = err.Error()
			}
		}
		c.program = prog
		r.mu.Unlock()
	}
	if notRunnable != "" {
		r.mu.Lock()
		r.reason, r.message = "ImageNotRunnable", notRunnable
		if r.pod.Spec.RestartPolicy == corev1.RestartPolicyNever {
			r.phase = corev1.PodFailed
		}
		r.mu.Unlock()
		log.Printf("pod %s/%s: %s", r.namespace, r.name, notRunnable)
		r.event(corev1.EventTypeWarning, "ImageNotRunnable", notRunnable)
		r.signal()
		<-r.stopping
		r.finish()
		return
	}

	// Network namespace with its own address.
	for {
		ip, err := r.k.ipam.allocate()
		var ns string
		if err == nil {
			if ns, err = r.k.setupNetns(string(r.uid), ip); err != nil {
				r.k.ipam.release(ip)
			}
		}
		if err == nil {
			_ = os.WriteFile(filepath.Join(r.dir, "netns"), []byte(ns), 0o644)
			now := nowSec()
			r.mu.Lock()
			r.ip, r.netns, r.netReady, r.startTime = ip, ns, true, &now
			r.mu.Unlock()
			r.signal()
			break
		}
		r.setMessage("NetworkNotReady", "setting up the pod network: "+err.Error())
		r.event(corev1.EventTypeWarning, "NetworkNotReady", "setting up the pod network: "+err.Error())
		if !r.sleep(5 * time.Second) {
			r.finish()
			return
		}
	}

	// Volumes: files for secrets, config maps, tokens.
	for {
		vols, err := r.writeVolumes(r.ctx, r.currentPod())
		if err == nil {
			r.mu.Lock()
			r.vols = vols
			r.reason, r.message = "", ""
			r.mu.Unlock()
			break
		}
		r.setWaiting("CreateContainerConfigError", err.Error())
		r.event(corev1.EventTypeWarning, "Failed", "Error: "+err.Error())
		if !r.sleep(5 * time.Second) {
			r.finish()
			return
		}
	}
	go r.refreshVolumes()

	// DNS: a resolv.conf of its own when the Pod's dnsPolicy asks for one.
	if resolv, err := r.writeResolvConf(r.currentPod()); err != nil {
		log.Printf("pod %s/%s: resolv.conf: %v", r.namespace, r.name, err)
		r.event(corev1.EventTypeWarning, "DNSConfigForming", "writing the pod's resolv.conf: "+err.Error())
	} else {
		r.mu.Lock()
		r.resolvConf = resolv
		r.mu.Unlock()
	}

	// Init containers, one after another, each to success.
	for _, c := range r.initCtrs {
		if !r.runToCompletion(c) {
			<-r.stopping
			r.finish()
			return
		}
	}
	r.mu.Lock()
	r.initDone = true
	r.mu.Unlock()
	r.signal()

	for _, c := range r.ctrs {
		r.wg.Add(2)
		go r.supervise(c)
		go r.probe(c)
	}
	<-r.stopping
	r.finish()
}

// event records an Event on the pod, as a kubelet does.
func (r *podRun) event(eventType, reason, message string) {
	r.k.recorder.Event(r.currentPod(), eventType, reason, message)
}

func (r *podRun) isTerminated() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.terminated
}

func (r *podRun) currentPod() *corev1.Pod {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.pod.DeepCopy()
}

// container is the init or app container of that name, or nil.
func (r *podRun) container(name string) *ctr {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range append(append([]*ctr{}, r.initCtrs...), r.ctrs...) {
		if c.spec.Name == name {
			return c
		}
	}
	return nil
}

// waitingReason is why a container that never started waits.
func (r *podRun) waitingReason(c *ctr) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c.waiting != nil {
		return c.waiting.Reason
	}
	return "ContainerCreating"
}

// containerLog is the container's log file, opened on first use.
func (r *podRun) containerLog(c *ctr) (*logFile, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c.log == nil {
		lf, err := openLogFile(c.logPath)
		if err != nil {
			return nil, err
		}
		c.log = lf
	}
	return c.log, nil
}

func (r *podRun) setMessage(reason, msg string) {
	r.mu.Lock()
	r.reason, r.message = reason, msg
	r.mu.Unlock()
	r.signal()
}

func (r *podRun) setWaiting(reason, msg string) {
	r.mu.Lock()
	for _, c := range append(append([]*ctr{}, r.initCtrs...), r.ctrs...) {
		if !c.running {
			c.waiting = &corev1.ContainerStateWaiting{Reason: reason, Message: msg}
		}
	}
	r.mu.Unlock()
	r.signal()
}

// refreshVolumes rewrites tokens and other volume files well before tokens expire.
func (r *podRun) refreshVolumes() {
	for r.sleep(20 * time.Minute) {
		if vols, err := r.writeVolumes(r.ctx, r.currentPod()); err != nil {
			log.Printf("pod %s/%s: refreshing volumes: %v", r.namespace, r.name, err)
		} else {
			r.mu.Lock()
			r.vols = vols
			r.mu.Unlock()
		}
	}
}

// finish stops every process, deletes the object if it was deleted with grace,
// and removes the network namespace and files.
func (r *podRun) finish() {
	r.mu.Lock()
	r.terminated = true
	grace := r.grace
	del := r.deleteObject
	all := append(append([]*ctr{}, r.initCtrs...), r.ctrs...)
	r.mu.Unlock()
	r.signal()

	var wg sync.WaitGroup
	for _, c := range all {
		wg.Add(1)
		go func(c *ctr) { defer wg.Done(); r.kill(c, grace) }(c)
	}
	wg.Wait()
	r.wg.Wait()
	r.mu.Lock()
	for _, c := range all {
		if c.log != nil {
			c.log.close()
		}
	}
	r.mu.Unlock()
	if del {
		r.k.deletePodObject(r.currentPod())
	}
	r.mu.Lock()
	ns, ip := r.netns, r.ip
	r.mu.Unlock()
	if ns != "" {
		deleteNetns(r.k.ipBin, ns)
		r.k.ipam.release(ip)
	}
	_ = os.RemoveAll(r.dir)
	log.Printf("pod %s/%s stopped", r.namespace, r.name)
}

// preStopSleep is the container's lifecycle.preStop.sleep (other preStop handlers are not run).
func preStopSleep(spec *corev1.Container) time.Duration {
	if spec == nil || spec.Lifecycle == nil || spec.Lifecycle.PreStop == nil || spec.Lifecycle.PreStop.Sleep == nil {
		return 0
	}
	return time.Duration(spec.Lifecycle.PreStop.Sleep.Seconds) * time.Second
}

// kill runs the preStop sleep, sends SIGTERM to the container's process group, then SIGKILL
// after what is left of grace.
func (r *podRun) kill(c *ctr, grace time.Duration) {
	r.mu.Lock()
	proc, exited := c.proc, c.exited
	running := c.running
	r.mu.Unlock()
	if proc == nil || !running {
		return
	}
	// A preStop sleep runs first, inside the grace period, as the real kubelet does it: the
	// Pod is already out of its Services' endpoints while it still serves.
	if pause := preStopSleep(&c.spec); pause > 0 {
		pause = min(pause, grace)
		select {
		case <-exited:
			return
		case <-time.After(pause):
		}
		grace -= pause
	}
	r.event(corev1.EventTypeNormal, "Killing", fmt.Sprintf("Stopping container %s (SIGTERM, SIGKILL after %s)", c.spec.Name, grace))
	_ = syscall.Kill(-proc.Pid, syscall.SIGTERM)
	select {
	case <-exited:
		return
	case <-time.After(grace):
	}
	_ = syscall.Kill(-proc.Pid, syscall.SIGKILL)
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		log.Printf("pod %s/%s: container %s did not exit after SIGKILL", r.namespace, r.name, c.spec.Name)
	}
}

func shouldRestart(policy corev1.RestartPolicy, exitCode int32) bool {
	switch policy {
	case corev1.RestartPolicyNever:
		return false
	case corev1.RestartPolicyOnFailure:
		return exitCode != 0
	default:
		return true
	}
}

// supervise runs a container, restarting it per restartPolicy with back-off.
func (r *podRun) supervise(c *ctr) {
	defer r.wg.Done()
	backoff := 2 * time.Second
	for !r.isStopping() {
		started := time.Now()
		st, err := r.startAndWait(c)
		if err != nil {
			r.mu.Lock()
			c.waiting = &corev1.ContainerStateWaiting{Reason: "CreateContainerError", Message: err.Error()}
			r.mu.Unlock()
			r.signal()
			r.event(corev1.EventTypeWarning, "Failed", fmt.Sprintf("container %s: %v", c.spec.Name, err))
			if !r.sleep(5 * time.Second) {
				return
			}
			continue
		}
		if r.isStopping() {
			r.mu.Lock()
			c.term = st
			r.mu.Unlock()
			r.signal()
			return
		}
		r.mu.Lock()
		policy := r.pod.Spec.RestartPolicy
		if !shouldRestart(policy, st.ExitCode) {
			c.term = st
			r.mu.Unlock()
			r.signal()
			<-r.stopping
			return
		}
		if time.Since(started) > time.Minute {
			backoff = 2 * time.Second
		}
		c.last = st
		c.restarts++
		c.waiting = &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff",
			Message: fmt.Sprintf("back-off %s restarting failed container=%s pod=%s_%s", backoff, c.spec.Name, r.name, r.namespace)}
		r.mu.Unlock()
		r.signal()
		r.event(corev1.EventTypeWarning, "BackOff", fmt.Sprintf("Back-off %s restarting failed container %s (exit code %d)", backoff, c.spec.Name, st.ExitCode))
		if !r.sleep(backoff) {
			return
		}
		if backoff *= 2; backoff > time.Minute {
			backoff = time.Minute
		}
	}
}

// runToCompletion runs an init container until it exits 0; false if the pod failed or stops.
func (r *podRun) runToCompletion(c *ctr) bool {
	backoff := 2 * time.Second
	for !r.isStopping() {
		st, err := r.startAndWait(c)
		r.mu.Lock()
		if err != nil {
			c.waiting = &corev1.ContainerStateWaiting{Reason: "CreateContainerError", Message: err.Error()}
		} else if st.ExitCode == 0 {
			c.term = st
			c.waiting = nil
			r.mu.Unlock()
			r.signal()
			return true
		} else if r.pod.Spec.RestartPolicy == corev1.RestartPolicyNever {
			c.term = st
			r.phase = corev1.PodFailed
			r.mu.Unlock()
			r.signal()
			return false
		} else {
			c.last = st
			c.restarts++
			c.waiting = &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}
		}
		r.mu.Unlock()
		r.signal()
		if !r.sleep(backoff) {
			return false
		}
		if backoff *= 2; backoff > time.Minute {
			backoff = time.Minute
		}
	}
	return false
}

// startAndWait starts the container's process and waits for it to exit.
func (r *podRun) startAndWait(c *ctr) (*corev1.ContainerStateTerminated, error) {
	pod := r.currentPod()
	env, err := r.containerEnv(r.ctx, pod, &c.spec)
	if err != nil {
		return nil, err
	}
	lookup := func(name string) (string, bool) {
		for _, kv := range env {
			if len(kv) > len(name) && kv[:len(name)] == name && kv[len(name)] == '=' {
				return kv[len(name)+1:], true
			}
		}
		return "", false
	}
	var cmdArgs, args []string
	for _, s := range c.spec.Command {
		cmdArgs = append(cmdArgs, expand(s, lookup))
	}
	for _, s := range c.spec.Args {
		args = append(args, expand(s, lookup))
	}
	argv, err := commandLine(c.program, c.spec.Image, cmdArgs, args)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(argv[0]); err != nil {
		return nil, fmt.Errorf("program for image %q: %w (build it, or set GANTRY_BIN)", c.spec.Image, err)
	}
	r.mu.Lock()
	vols := r.vols
	r.mu.Unlock()
	cmd, err := r.launcher(c, vols, argv, env)
	if err != nil {
		return nil, err
	}
	lf, err := r.containerLog(c)
	if err != nil {
		return nil, err
	}
	drained, err := startLogged(cmd, lf)
	if err != nil {
		return nil, err
	}
	pidFile := filepath.Join(r.dir, c.spec.Name+".pid")
	_ = os.WriteFile(pidFile, []byte(strconv.Itoa(cmd.Process.Pid)), 0o644)
	exited := make(chan struct{})
	r.mu.Lock()
	c.proc, c.exited, c.running, c.startedAt = cmd.Process, exited, true, nowSec()
	c.waiting, c.term, c.ready = nil, nil, false
	c.id = fmt.Sprintf("process://%d", cmd.Process.Pid)
	r.mu.Unlock()
	r.signal()
	r.event(corev1.EventTypeNormal, "Started", fmt.Sprintf("Started container %s: %s (pid %d)", c.spec.Name, strings.Join(argv, " "), cmd.Process.Pid))

	_ = cmd.Wait() // the exit status is read from ProcessState below
	drained()      // its last lines are in the log before it is reported terminated
	st := &corev1.ContainerStateTerminated{ContainerID: c.id, FinishedAt: nowSec(), StartedAt: c.startedAt}
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		st.ExitCode = 128 + int32(ws.Signal())
		st.Signal = int32(ws.Signal())
		st.Reason = "Error"
		st.Message = "killed by signal " + ws.Signal().String()
	} else {
		st.ExitCode = int32(cmd.ProcessState.ExitCode())
		st.Reason = "Completed"
		if st.ExitCode != 0 {
			st.Reason = "Error"
		}
	}
	_ = os.Remove(pidFile)
	r.mu.Lock()
	c.running, c.ready = false, false
	r.mu.Unlock()
	close(exited)
	r.signal()
	return st, nil
}

// statusLoop reports the pod's status through the API whenever it changes.
func (r *podRun) statusLoop() {
	for {
		select {
		case <-r.ctx.Done():
			return
		case <-r.changed:
		case <-time.After(10 * time.Second):
		}
		if err := r.syncStatus(); err != nil && !apierrors.IsNotFound(err) && !r.isTerminated() {
			if !apierrors.IsConflict(err) {
				log.Printf("pod %s/%s: status: %v", r.namespace, r.name, err)
			}
			r.signal()
			select {
			case <-r.ctx.Done():
				return
			case <-time.After(500 * time.Millisecond):
			}
		}
	}
}

func (r *podRun) syncStatus() error {
	cur, err := r.k.cs.CoreV1().Pods(r.namespace).Get(r.ctx, r.name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	if cur.UID != r.uid {
		return nil
	}
	st := r.buildStatus(&cur.Status)
	if equality.Semantic.DeepEqual(cur.Status, st) {
		return nil
	}
	cur.Status = st
	_, err = r.k.cs.CoreV1().Pods(r.namespace).UpdateStatus(r.ctx, cur, metav1.UpdateOptions{})
	return err
}
